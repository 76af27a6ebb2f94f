from datetime import timedelta
from io import StringIO
from unittest.mock import ANY

import orjson
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from audit.access import flush_access_failures
from rollback_console.authentication import issue_token
from tests.actions.conftest import action_body, audit_events

pytestmark = pytest.mark.django_db
URL = "/api/v1/actions/"


def _issue(*args):
    out = StringIO()
    call_command("issue_token", *args, stdout=out)
    return out.getvalue().splitlines()[-1]


def _client(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_issue_token_prints_a_token_alone_on_its_last_line_that_records_actions(cast):
    token = _issue("shop")

    response = _client(token).post(URL, action_body(), format="json")

    assert response.status_code == 201
    assert response.json()["integrator"] == "shop"
    (event,) = audit_events("token.issued")
    assert event.data.startswith('{"expires_at":"') and '"user":"shop"' in event.data
    assert token not in event.data


def test_a_token_is_stored_only_as_a_hash(cast):
    token = _issue("shop")

    (record,) = AuthToken.objects.filter(user=cast.shop)
    assert token not in (record.digest, record.token_key)
    assert len(token) == 64 and record.digest != token


def test_a_token_expires_after_the_given_time(cast):
    token = _issue("shop", "--expires", "2h")

    (record,) = AuthToken.objects.filter(user=cast.shop)
    assert timedelta(hours=1, minutes=59) < record.expiry - timezone.now() <= timedelta(hours=2)
    assert _client(token).get(URL).status_code == 200


def test_an_expired_token_is_refused_with_401_and_the_refusal_is_audited(cast):
    _, token = issue_token(cast.shop, expires=timedelta(seconds=-1), actor="test")

    response = _client(token).post(URL, action_body(), format="json")

    assert response.status_code == 401
    flush_access_failures(now=timezone.now() + timedelta(minutes=2))  # counted per address and minute: audit.access
    assert orjson.loads(audit_events("auth.failed")[-1].data) == {
        "address": "127.0.0.1",
        "minute": ANY,
        "count": 1,
        "method": "POST",
        "path": "/api/v1/actions/",
        "reason": "Invalid token.",
    }


def test_revoked_tokens_are_refused_at_once(cast):
    first, second = _issue("shop"), _issue("shop")
    assert _client(first).get(URL).status_code == 200

    out = StringIO()
    call_command("revoke_tokens", "shop", stdout=out)

    assert "Revoked 2 token(s) of shop." in out.getvalue()
    assert _client(first).get(URL).status_code == 401
    assert _client(second).get(URL).status_code == 401
    (event,) = audit_events("token.revoked")
    assert '"tokens":2' in event.data and '"user":"shop"' in event.data


@pytest.mark.parametrize("header", ["Token", "Token a b", "Token not-a-real-token", "Token \xff\xfe"])
def test_a_malformed_or_unknown_token_is_a_401(cast, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    assert client.get(URL).status_code == 401


def test_the_commands_refuse_unknown_users_and_bad_durations(cast):
    with pytest.raises(CommandError, match="No user is named 'mallory'"):
        _issue("mallory")
    with pytest.raises(CommandError, match="--expires"):
        _issue("shop", "--expires", "soon")
    with pytest.raises(CommandError, match="No user is named 'mallory'"):
        call_command("revoke_tokens", "mallory", stdout=StringIO())


def test_a_token_request_reads_the_callers_roles_with_the_token_in_one_query(cast):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    shop, nobody = _client(_issue("shop")), _client(_issue("nobody"))

    with CaptureQueriesContext(connection) as captured:
        assert shop.get("/api/v1/action-types/").status_code == 200
    queries = [query["sql"] for query in captured]  # the next request empties Django's query log

    assert [sql for sql in queries if "auth_group" in sql] == [queries[0]]
    assert "knox_authtoken" in queries[0]
    assert nobody.get("/api/v1/action-types/").status_code == 403


def test_a_token_of_an_inactive_user_is_refused(cast):
    token = _issue("shop")
    cast.shop.is_active = False
    cast.shop.save(update_fields=["is_active"])

    assert _client(token).get(URL).status_code == 401
