"""The README's demo walkthrough, end to end in one process: the demo's data, the real services and execution
engine, and the real demo shop answering real signed calls (urllib is routed to Django's test client instead of
a socket, so the webhook method, its signature and the shop's receivers all run as they do in the demo)."""

import io
import urllib.error
import urllib.request
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.management import call_command
from django.test import Client

from actions.models import Action
from demo_shop.models import Benefit, Customer, OutboundEmail, ReversalLedgerEntry
from rollbacks import services
from rollbacks.execution import confirm_cascade, retry_step
from rollbacks.models import Rollback
from tests.rollbacks.executing import worker_fixture  # noqa: F401  (the `worker` fixture: Celery's work, in process)


class _Answer:
    def __init__(self, status: int, body: bytes):
        self.status, self.body = status, body

    def read(self) -> bytes:
        return self.body

    def __enter__(self) -> "_Answer":
        return self

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.fixture
def shop_over_http(monkeypatch, settings):
    """Every urlopen reaches this server's own URLs through the test client; counts the calls."""
    calls: list[str] = []
    # The shop answers inside this test's own database transaction, which only this thread's connection sees:
    # the calls go one after another here instead of on the worker's pool (a real shop is another process).
    settings.INTEGRATOR_CALL_THREADS = 1

    def urlopen(request: urllib.request.Request, timeout: float | None = None) -> _Answer:
        path = urlsplit(request.full_url).path
        calls.append(path)
        headers = {name: value for name, value in request.header_items() if name.lower() != "content-type"}
        response = Client().post(path, data=request.data, content_type="application/json", headers=headers)
        if response.status_code >= 400:
            raise urllib.error.HTTPError(path, response.status_code, "", {}, io.BytesIO(response.content))
        return _Answer(response.status_code, response.content)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    monkeypatch.setenv("SHOP_WEBHOOK_SECRET", "walkthrough-secret")
    return calls


@pytest.fixture
def demo(db, tmp_path, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    call_command("demo", credentials=tmp_path / "credentials.json", stdout=io.StringIO())
    return {r.trigger: r for r in Rollback.objects.filter(state="pending_authorization")}


def approve(rollback: Rollback, username: str) -> None:
    services.sign_off(rollback.pk, signer=User.objects.get(username=username), decision="approve")


def test_vera_approves_adas_rollback_and_the_shop_takes_back_the_refund_and_the_points(
    demo, shop_over_http, worker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        approve(demo["reviewer_error"], "vera")
    worker()
    rollback = Rollback.objects.get(pk=demo["reviewer_error"].pk)
    assert rollback.state == "paused"  # the tier upgrade and the benefits wait beyond the authorized depth 1
    ada = Customer.objects.get(number=1001)
    assert (ada.balance, ada.points, ada.tier) == (Decimal("0.00"), 120, "gold")
    templates = set(
        OutboundEmail.objects.filter(customer=ada, source="rollback_notification").values_list("template", flat=True)
    )
    assert templates == {"refund_reversed", "points_revoked"}  # each step's compensation, as it is reversed
    assert "/demo-shop/reversals" in shop_over_http

    with django_capture_on_commit_callbacks(execute=True):
        confirm_cascade(rollback.pk, actor=User.objects.get(username="vera"), depth=3)
    worker()
    ada.refresh_from_db()
    assert ada.tier == "silver"
    rollback.refresh_from_db()
    steps = dict(rollback.steps.values_list("action__external_id", "outcome"))
    assert steps == {
        "run-101/refund-1": "reversed",
        "run-101/points-1": "reversed",
        "run-101/tier-1": "reversed",
        "run-101/benefits-1": "reversed",
    }
    assert rollback.state == "completed"
    benefits = set(Benefit.objects.filter(reference="run-101/benefits-1").values_list("name", "status", "used"))
    assert benefits == {("free_shipping", "withdrawn", False), ("lounge_access", "withdrawn", True)}
    assert Action.objects.get(external_id="run-101/benefits-1").state == "partially_reversed"
    notice = OutboundEmail.objects.get(customer=ada, template="rollback_reviewer_error")
    assert notice.to == "ada@example.com"
    assert [message.to for message in mail.outbox] == [["rollbacks@example.com"]]  # the internal audience


def test_colms_closed_account_leaves_the_chargeback_unmet_until_it_is_reopened(
    demo, shop_over_http, worker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        approve(demo["customer_request"], "carl")
    worker()
    rollback = Rollback.objects.get(pk=demo["customer_request"].pk)
    (step,) = rollback.steps.all()
    assert (rollback.state, step.outcome) == ("failed", "prerequisites_unmet")

    Customer.objects.filter(number=1003).update(status="open")
    with django_capture_on_commit_callbacks(execute=True):
        retry_step(rollback.pk, step.pk, actor=User.objects.get(username="carl"))
    worker()
    step.refresh_from_db()
    assert step.outcome == "reversed"
    assert Customer.objects.get(number=1003).balance == Decimal("0.00")


def test_ian_approves_the_incident_and_each_of_the_five_refunds_is_charged_back_once(
    demo, shop_over_http, worker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        approve(demo["incident"], "ian")
    worker()
    assert Rollback.objects.get(pk=demo["incident"].pk).state == "completed"
    for number in range(1006, 1011):
        assert Customer.objects.get(number=number).balance == Decimal("0.00")
    applied = ReversalLedgerEntry.objects.filter(phase="reverse", applied=True)
    assert sorted(applied.values_list("external_id", flat=True)) == [f"run-077/refund-{i}" for i in range(1, 6)]
