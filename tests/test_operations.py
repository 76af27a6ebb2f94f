"""The contract's "Operations": /healthz, /readyz (database and broker, one line per further check) and /metrics
(Prometheus text behind METRICS_TOKEN, read at scrape time with a constant number of queries)."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from prometheus_client.parser import text_string_to_metric_families

from rollback_console import health, metrics
from rollbacks import circuits, services
from tests.rollbacks.requesting import record

pytestmark = pytest.mark.django_db

TOKEN = "a-scraper-token-of-forty-characters-or-so-abc"
DEAD_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def scrape(client: Client, token: str = TOKEN):
    return client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")


def samples(response) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_healthz_answers_while_the_process_serves(client):
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_answers_200_when_the_database_and_the_broker_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "status": "ok",
        "failed": [],
        "checks": {"database": "ok", "broker": "ok"},
        "integrators": {"shop": "closed"},
    }


def test_readyz_says_an_integrator_s_circuit_is_open_and_stays_ready(client):
    circuits._store().trip("shop", circuits.Limits(cool_down=60))
    response = client.get("/readyz")
    assert response.status_code == 200  # its steps wait, pending: this process still serves
    assert response.json()["integrators"]["shop"] == "open"


def test_metrics_give_each_integrator_s_circuit_state(client, settings):
    settings.METRICS_TOKEN = TOKEN
    circuits._store().trip("shop", circuits.Limits(cool_down=60))
    found = samples(scrape(client))
    assert found[("rollback_console_integrator_circuit", (("integrator", "shop"), ("state", "open")))] == 1
    assert found[("rollback_console_integrator_circuit", (("integrator", "shop"), ("state", "closed")))] == 0


def test_readyz_reports_a_stopped_broker_with_503_naming_it(client, monkeypatch):
    monkeypatch.setenv("CELERY_BROKER_URL", DEAD_BROKER)  # Celery prefers the variable to its setting

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "failed": ["broker"],
        "checks": {"database": "ok", "broker": "failed"},
        "integrators": {},  # the circuits live on the broker's Redis: not read while it is down
    }
    assert "127.0.0.1" not in response.content.decode(), "why it failed goes to the log, not to the caller"


def test_readyz_reports_a_database_that_does_not_answer(client, monkeypatch):
    def unreachable() -> None:
        raise ConnectionError("the database is down")

    monkeypatch.setattr(health, "READINESS_CHECKS", [("database", unreachable), *health.READINESS_CHECKS[1:]])
    response = client.get("/readyz")
    assert (response.status_code, response.json()["failed"]) == (503, ["database"])


def test_a_further_readiness_check_is_one_line(client, monkeypatch):
    monkeypatch.setattr(health, "READINESS_CHECKS", [*health.READINESS_CHECKS, ("integrators", lambda: "open: shop")])
    response = client.get("/readyz")
    assert (response.status_code, response.json()["failed"]) == (503, ["integrators"])


def test_metrics_are_not_found_while_no_token_is_set(client, settings):
    settings.METRICS_TOKEN = ""
    assert scrape(client, "").status_code == 404
    assert scrape(client, "anything").status_code == 404
    assert client.get("/metrics").status_code == 404


def test_metrics_refuse_a_caller_without_the_token_or_with_another(client, settings, cast):
    settings.METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 404
    assert scrape(client, TOKEN + "x").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Token {TOKEN}").status_code == 404
    client.force_login(cast.audrey)  # a session is not the token either
    assert client.get("/metrics").status_code == 404


def test_metrics_serve_prometheus_text_with_the_documented_names(client, settings, cast):
    settings.METRICS_TOKEN = TOKEN
    action = record(cast.shop, "refund.issue")
    services.request_rollback(
        requester=cast.shop, trigger="customer_request", reason="disputed", actions=[action.pk], max_cascade_depth=None
    )

    response = scrape(client)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    found = samples(response)
    assert found[("rollback_console_rollbacks", (("state", "pending_authorization"),))] == 1
    assert found[("rollback_console_rollbacks", (("state", "completed"),))] == 0
    assert found[("rollback_console_steps", (("outcome", "pending"),))] == 1
    assert found[("rollback_console_inbox", (("inbox", "pending_signoff"),))] == 1
    assert found[("rollback_console_inbox", (("inbox", "open_remediation_tasks"),))] == 0
    assert found[("rollback_console_audit_head_seq", ())] >= 3
    assert ("rollback_console_messages", (("kind", "communication"), ("status", "sent"))) in found
    assert found[("rollback_console_broker_up", ())] == 1
    for queue in ("execution", "communications", "housekeeping"):
        assert found[("rollback_console_queue_depth", (("queue", queue),))] >= 0


def test_a_scrape_costs_the_same_queries_whatever_the_numbers(client, settings, cast):
    settings.METRICS_TOKEN = TOKEN

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert scrape(client).status_code == 200
        return len(captured)

    before = queries()
    for index in range(5):
        action = record(cast.shop, "refund.issue", external_id=f"metrics-{index}")
        services.request_rollback(
            requester=cast.shop, trigger="customer_request", reason="x", actions=[action.pk], max_cascade_depth=None
        )
    assert queries() == before <= 10


def test_a_broker_that_does_not_answer_leaves_the_other_figures(client, settings, monkeypatch):
    settings.METRICS_TOKEN = TOKEN
    monkeypatch.setenv("CELERY_BROKER_URL", DEAD_BROKER)

    found = samples(scrape(client))

    assert found[("rollback_console_broker_up", ())] == 0
    assert not any(name == "rollback_console_queue_depth" for name, _ in found)
    assert ("rollback_console_audit_head_seq", ()) in found


def test_a_further_figure_is_one_line(client, settings, monkeypatch):
    from prometheus_client.core import GaugeMetricFamily

    settings.METRICS_TOKEN = TOKEN
    extra = [*metrics.COLLECTORS, lambda: [GaugeMetricFamily("rollback_console_circuit_open", "x", value=1)]]
    monkeypatch.setattr(metrics, "COLLECTORS", extra)
    assert samples(scrape(client))[("rollback_console_circuit_open", ())] == 1
