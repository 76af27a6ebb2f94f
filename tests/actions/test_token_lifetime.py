"""Tokens expire after at most TOKEN_MAX_AGE_DAYS (default 365): the command, the admin and the service refuse more."""

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from knox.models import AuthToken

from rollback_console.authentication import issue_token

pytestmark = pytest.mark.django_db


def _issue(*args):
    out = StringIO()
    call_command("issue_token", *args, stdout=out)
    return out.getvalue()


def test_issue_token_refuses_a_token_that_never_expires(cast):
    with pytest.raises(CommandError, match=r"--expires: tokens must expire; give a duration of at most 365d"):
        _issue("shop", "--expires", "never")
    assert not AuthToken.objects.filter(user=cast.shop).exists()


@pytest.mark.parametrize("expires", ["366d", "9999999999d", f"{366 * 24}h"])
def test_issue_token_refuses_a_lifetime_beyond_the_maximum(cast, expires):
    with pytest.raises(CommandError, match=r"--expires: .* longer than the most allowed, 365 days"):
        _issue("shop", "--expires", expires)
    assert not AuthToken.objects.filter(user=cast.shop).exists()


def test_issue_token_accepts_the_maximum_and_follows_the_setting(cast, settings):
    _issue("shop", "--expires", "365d")
    settings.TOKEN_MAX_AGE_DAYS = 7

    with pytest.raises(CommandError, match="longer than the most allowed, 7 days"):
        _issue("shop", "--expires", "8d")
    (token,) = AuthToken.objects.filter(user=cast.shop)
    assert token.expiry > timezone.now() + timedelta(days=364)


def test_the_default_lifetime_expires(cast):
    _issue("shop")

    (token,) = AuthToken.objects.filter(user=cast.shop)
    assert token.expiry is not None and token.expiry < timezone.now() + timedelta(days=91)


@pytest.mark.parametrize("expires", [None, timedelta(days=366)])
def test_the_service_refuses_a_token_without_expiry_or_beyond_the_maximum(cast, expires):
    with pytest.raises(ValueError, match="TOKEN_MAX_AGE_DAYS"):
        issue_token(cast.shop, expires=expires, actor="test")
    assert not AuthToken.objects.filter(user=cast.shop).exists()


@pytest.mark.parametrize("expires", ["9999999999d", "366d"])
def test_the_admin_refuses_a_token_lifetime_beyond_the_maximum_naming_the_field(cast, expires):
    operator = Client()
    operator.force_login(User.objects.create_superuser("ops", "ops@example.com", "x"))

    response = operator.post("/admin/knox/authtoken/add/", {"user": cast.shop.pk, "expires": expires})

    assert response.status_code == 400
    assert "longer than the most allowed, 365 days (TOKEN_MAX_AGE_DAYS)" in response.content.decode()
    assert response.context["form"].errors["expires"]
    assert not AuthToken.objects.filter(user=cast.shop).exists()
