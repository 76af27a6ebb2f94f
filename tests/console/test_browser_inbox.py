"""The inbox in a real browser: what each role finds waiting after each kind of event (a request to sign, a paused
cascade, a step whose prerequisites are unmet, a remediation task), the live counts in the header, and the
Rollbacks page for those who sign nothing. CONSOLE_SCREENSHOTS=docs/screenshots keeps the screenshots."""

import json
import os
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from django.db import connection

from rollbacks.models import Rollback, RollbackState
from rollbacks.services import request_rollback, sign_off

from . import test_browser
from .conftest import record

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="browser tests run against PostgreSQL"),
    pytest.mark.django_db(transaction=True),
]
# The browser and the signed-in pages of the console's browser tests.
chromium = test_browser.chromium
open_as = test_browser.open_as
CLOSED = "customer:closed"  # the shop answers the check of any action on this subject with `unmet`


@pytest.fixture
def shop_with_a_closed_account(eager_workers) -> Iterator[None]:
    def answer(url, payload, secret, idempotency_key):  # type: ignore[no-untyped-def]
        if payload.get("phase") == "check" and payload.get("action", {}).get("subject") == CLOSED:
            return 200, json.dumps({"status": "unmet", "unmet": ["account_open"]}).encode()
        return 200, b'{"status": "ok"}'

    with mock.patch("policies.methods.webhook.post_signed", side_effect=answer):
        yield


def rows(page) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(kind, summary) of each row of the queue page, in order."""
    found = []
    for row in page.locator("tr[data-inbox-row]").all():
        found.append((row.get_attribute("data-kind"), row.locator("[data-testid=summary]").inner_text()))
    return found


def test_each_role_finds_in_its_inbox_what_each_event_left_for_it(
    cast, live_server, open_as, shop_with_a_closed_account, tmp_path
):
    out = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    # A request to sign: bob flags alice's refund; verifiers sign it.
    refund = record(cast.shop, subject="customer:1001", amount="25.00")
    flagged = request_rollback(requester=cast.bob, trigger="reviewer_error", reason="wrong refund", actions=[refund.pk])
    # Everything else is the shop's customer requests, which carl signs and carries on.
    waiting = record(cast.shop, subject="customer:2002", amount="80.00")
    request_rollback(requester=cast.shop, trigger="customer_request", reason="customer asks", actions=[waiting.pk])
    cascading = record(cast.shop, subject="customer:3003", amount="40.00")
    record(cast.shop, "loyalty.points_grant", subject="customer:3003", caused_by=(cascading.external_id,))
    paused = request_rollback(
        requester=cast.shop, trigger="customer_request", reason="undo it", actions=[cascading.pk], max_cascade_depth=0
    )
    sign_off(paused.pk, signer=cast.carl, decision="approve")
    unmet = record(cast.shop, subject=CLOSED, amount="55.00")
    failing = request_rollback(requester=cast.shop, trigger="customer_request", reason="undo", actions=[unmet.pk])
    sign_off(failing.pk, signer=cast.carl, decision="approve")
    wire = record(cast.shop, "wire.transfer", subject="vendor:88", amount="12500.00")
    manual = request_rollback(requester=cast.shop, trigger="customer_request", reason="recall", actions=[wire.pk])
    sign_off(manual.pk, signer=cast.carl, decision="approve")
    states = dict(Rollback.objects.filter(pk__in=[paused.pk, failing.pk, manual.pk]).values_list("pk", "state"))
    assert states[paused.pk] == RollbackState.PAUSED
    assert states[failing.pk] == states[manual.pk] == RollbackState.FAILED

    # The verifier: the one request to sign, and the header counts it.
    verifier = open_as("vera")
    assert rows(verifier) == [("signoff", "Sign off reversing refund.issue on customer:1001 (25.00 EUR)")]
    assert "Sign-off 1" in verifier.inner_text("[data-testid=inbox-counts]")
    assert verifier.locator(f"input[name=rollback][value='{flagged.pk}']").count() in (0, 1)  # batch: other branch

    # Customer service: one of each other kind, the request to sign among them.
    agent = open_as("carl")
    kinds = {kind for kind, _ in rows(agent)}
    assert kinds == {"signoff", "confirm_cascade", "step", "remediation"}
    summaries = dict((kind, text) for kind, text in rows(agent))
    assert summaries["step"] == "Step prerequisites unmet: refund.issue on customer:closed (55.00 EUR)"
    assert summaries["remediation"].endswith("wire.transfer on vendor:88 (12500.00 EUR)")
    assert summaries["confirm_cascade"].startswith("Confirm the cascade beyond depth 0: refund.issue on customer:3003")
    counts = agent.inner_text("[data-testid=inbox-counts]")
    assert "Sign-off 1" in counts and "Confirm 1" in counts and "Steps 1" in counts and "Remediation 1" in counts
    badge = agent.locator("tr[data-kind=signoff] td.state .badge")
    assert badge.inner_text() == "pending authorization"
    assert badge.evaluate(
        "b => b.scrollWidth <= b.clientWidth && b.parentElement.scrollWidth <= b.parentElement.clientWidth"
    )
    agent.screenshot(path=str(out / "inbox.png"), full_page=True)

    agent.select_option("#f-kind", "step")
    with agent.expect_navigation():
        agent.click("text=Filter")
    assert [kind for kind, _ in rows(agent)] == ["step"]
    with agent.expect_navigation():
        agent.locator("tr[data-inbox-row] [data-testid=summary]").first.click()
    assert f"/console/rollbacks/{failing.pk}/" in agent.url

    # A new request shows in the header's counts without a reload (the poll, run now rather than in 30 s).
    agent.goto(f"{live_server.url}/console/actions/")
    another = record(cast.shop, subject="customer:4004")
    request_rollback(requester=cast.shop, trigger="customer_request", reason="again", actions=[another.pk])
    agent.evaluate("htmx.trigger(document.getElementById('inbox-counts'), 'every 30s')")
    agent.evaluate("htmx.ajax('GET', '/console/inbox/counts/', {target: '#inbox-counts', swap: 'outerHTML'})")
    agent.wait_for_function("document.getElementById('inbox-counts').innerText.includes('Sign-off 2')")

    # An executive has nothing waiting; an auditor and a reviewer land on the Rollbacks page.
    executive = open_as("eddie")
    assert executive.locator("[data-testid=queue-empty]").count() == 1
    auditor = open_as("audrey")
    assert auditor.url.endswith("/console/rollbacks/")
    assert auditor.locator("tr[data-rollback]").count() == 6
    auditor.fill("#q", "recall")
    with auditor.expect_navigation():
        auditor.click("button:text('Search')")
    assert [r.get_attribute("data-rollback") for r in auditor.locator("tr[data-rollback]").all()] == [str(manual.pk)]
    auditor.goto(f"{live_server.url}/console/rollbacks/?state=paused")
    assert auditor.locator("tr[data-rollback]").count() == 1
    auditor.goto(f"{live_server.url}/console/rollbacks/")
    auditor.screenshot(path=str(out / "rollbacks.png"), full_page=True)
    reviewer = open_as("bob")
    assert reviewer.url.endswith("/console/rollbacks/")
    assert [r.get_attribute("data-rollback") for r in reviewer.locator("tr[data-rollback]").all()] == [str(flagged.pk)]
