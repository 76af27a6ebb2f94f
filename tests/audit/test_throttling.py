"""API throttling: a token or a person calling past its rate gets 429, counted as `access.throttled` per client
address and minute; reading the trail has a rate of its own. Rates are settings (environment), set low here."""

from datetime import timedelta
from unittest import mock

import orjson
import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from audit.access import flush_access_failures
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def rates(**overrides: str):  # type: ignore[no-untyped-def]
    """DRF reads the rates once, at import: change the class attribute it reads them from."""
    return mock.patch.object(SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, **overrides})


def test_the_default_rates_come_from_the_settings():
    assert set(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]) == {"anon", "user", "audit"}
    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["user"] == "1200/min"


def test_a_token_past_its_rate_gets_429_and_the_throttled_calls_are_counted_once_per_minute(cast):
    client = APIClient(REMOTE_ADDR="203.0.113.20")
    client.force_authenticate(cast.shop)
    moment = timezone.now().replace(second=5)

    with rates(user="3/min"), mock.patch("django.utils.timezone.now", return_value=moment):
        answers = [client.get("/api/v1/actions/").status_code for _ in range(7)]

    assert answers == [200, 200, 200, 429, 429, 429, 429]
    assert not AuditEvent.objects.filter(kind="access.throttled").exists()
    flush_access_failures(now=moment + timedelta(minutes=2))
    [event] = AuditEvent.objects.filter(kind="access.throttled")
    data = orjson.loads(event.data)
    assert (data["address"], data["count"], data["path"]) == ("203.0.113.20", 4, "/api/v1/actions/")
    assert data["reason"].startswith("shop: Request was throttled.")


def test_reading_the_trail_has_its_own_lower_rate(cast):
    client = APIClient()
    client.force_authenticate(cast.audrey)

    with rates(audit="2/min"):
        answers = [client.get("/api/v1/audit/events/").status_code for _ in range(3)]
        other = client.get("/api/v1/actions/").status_code

    assert answers == [200, 200, 429]
    assert other == 200, "the trail's rate does not throttle the rest of the API"


def test_a_caller_without_permission_is_refused_before_it_is_counted_against_a_rate(cast):
    client = APIClient()
    client.force_authenticate(cast.nobody)
    with rates(audit="1/min"):
        answers = [client.get("/api/v1/audit/events/").status_code for _ in range(3)]
    assert answers == [403, 403, 403]
