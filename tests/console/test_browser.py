"""The console in a real browser (headless Chromium) against a live server on PostgreSQL.

Execution runs in the web process here (Celery eager, the integrator's webhook answering ok): the worker
integration is tested elsewhere; what matters here is what people see and press.
"""

import os
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from rollbacks.execution import confirm_cascade
from rollbacks.models import Rollback, RollbackState, SignOff
from rollbacks.services import request_rollback, sign_off
from tests.conftest import PASSWORD

from .conftest import incident_commander, record

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="browser tests run against PostgreSQL"),
    pytest.mark.django_db(transaction=True),
]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def chromium() -> Iterator[object]:
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # the sync API runs an event loop in this thread
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def open_as(chromium, live_server):
    """A fresh browser page signed in through the login form as `username`."""
    contexts = []

    def sign_in(username: str):  # type: ignore[no-untyped-def]
        context = chromium.new_context(viewport={"width": 1360, "height": 900})  # type: ignore[attr-defined]
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        with page.expect_navigation():
            page.click("button[type=submit]")
        # The queue, or the Rollbacks page for people nothing can wait for (an auditor, a reviewer).
        page.wait_for_url(re.compile(re.escape(live_server.url) + r"/console/(rollbacks/)?$"))
        return page

    yield sign_in
    for context in contexts:
        context.close()


def test_a_reviewer_error_is_filed_verified_executed_and_shows_on_the_action(cast, live_server, open_as, eager_workers):
    refund = record(cast.shop)
    points = record(cast.shop, "loyalty.points_grant", caused_by=(refund.external_id,))

    reviewer = open_as("bob")
    reviewer.goto(f"{live_server.url}/console/actions/")
    reviewer.fill("#q", refund.external_id)
    with reviewer.expect_navigation():
        reviewer.click("text=Search")
    with reviewer.expect_navigation():
        reviewer.click(f"a:text('{refund.external_id}')")
    reviewer.select_option("#id_trigger", "reviewer_error")
    reviewer.fill("#id_reason", "The refund was approved against the wrong order.")
    with reviewer.expect_navigation():
        reviewer.click("button[value=preview]")
    assert "downstream in the cascade" in reviewer.inner_text("[data-testid=plan]")
    with reviewer.expect_navigation():
        reviewer.click("button[value=submit]")
    reviewer.wait_for_url("**/console/rollbacks/*/")
    rollback = Rollback.objects.get()
    assert reviewer.locator("button[value=approve]").count() == 0
    assert "You requested this rollback" in reviewer.inner_text("[data-testid=sign-refusal]")

    # A forged approval from the requester, with a valid CSRF token, is refused by sign_off.
    token = next(c["value"] for c in reviewer.context.cookies() if c["name"] == "csrftoken")
    reviewer.request.post(
        f"{live_server.url}/console/rollbacks/{rollback.pk}/signoff/",
        form={"decision": "approve", "csrfmiddlewaretoken": token},
        headers={"Referer": live_server.url + "/"},
    )
    assert not SignOff.objects.filter(rollback=rollback).exists()

    verifier = open_as("vera")
    row = verifier.locator(f"tr[data-rollback='{rollback.pk}']")
    assert "The refund was approved against the wrong order." in row.inner_text()
    with verifier.expect_navigation():
        row.locator("a").first.click()
    assert "alice" in verifier.inner_text("[data-testid=approver]")
    verifier.fill("#comment", "Checked the order: the refund was wrong.")
    with verifier.expect_navigation():
        verifier.click("button[value=approve]")
    verifier.wait_for_url(f"**/console/rollbacks/{rollback.pk}/")
    rollback.refresh_from_db()
    assert rollback.state == RollbackState.COMPLETED
    assert "completed" in verifier.inner_text("[data-testid=rollback-state]")

    verifier.goto(f"{live_server.url}/console/actions/{refund.pk}/")
    chain = verifier.inner_text("[data-testid=action-rollbacks]")
    assert f"#{rollback.pk}" in chain and "reversed" in chain
    assert "reversed" in verifier.inner_text("[data-testid=action-state]")
    assert "rollback.completed" in verifier.inner_text("[data-testid=audit]")
    verifier.goto(f"{live_server.url}/console/actions/{points.pk}/")
    assert "reversed" in verifier.inner_text("[data-testid=action-state]")  # the cascade went with it


def test_customer_service_on_an_expired_refund_demands_an_executive(cast, live_server, open_as):
    refund = record(cast.shop, executed_at=timezone.now() - timedelta(days=45))
    agent = open_as("carl")
    agent.goto(f"{live_server.url}/console/actions/{refund.pk}/")
    preview = agent.inner_text("[data-testid=preview]")
    assert "window expired" in preview and "1 executive" in preview
    agent.fill("#id_reason", "The customer returned the goods after all.")
    with agent.expect_navigation():
        agent.click("button[value=submit]")
    agent.wait_for_url("**/console/rollbacks/*/")
    requirements = agent.inner_text("[data-testid=requirements]")
    assert "Executive: 0 of 1" in requirements and "Customer service: 0 of 1" in requirements

    executive = open_as("eddie")
    rollback = Rollback.objects.get()
    assert executive.locator(f"tr[data-rollback='{rollback.pk}']").count() == 1


def test_a_paused_cascade_is_confirmed_from_the_page(cast, live_server, open_as, eager_workers):
    refund = record(cast.shop)
    record(cast.shop, "loyalty.points_grant", caused_by=(refund.external_id,))
    rollback = request_rollback(
        requester=cast.bob, trigger="reviewer_error", reason="wrong refund", actions=[refund.pk], max_cascade_depth=0
    )
    sign_off(rollback.pk, signer=cast.vera, decision="approve")  # commits, so execution runs at once (eager)
    rollback.refresh_from_db()
    assert rollback.state == RollbackState.PAUSED

    verifier = open_as("vera")
    verifier.goto(f"{live_server.url}/console/rollbacks/{rollback.pk}/")
    assert verifier.locator("[data-outcome=awaiting_confirmation]").count() == 1
    with verifier.expect_navigation():
        verifier.click("text=Confirm cascade")
    verifier.wait_for_url(f"**/console/rollbacks/{rollback.pk}/")
    rollback.refresh_from_db()
    assert rollback.state == RollbackState.COMPLETED
    assert verifier.locator("[data-outcome=awaiting_confirmation]").count() == 0


def test_screenshots_of_the_queue_a_request_and_an_action(cast, live_server, open_as, eager_workers, tmp_path):
    """Realistic data, then the three pages the README shows. CONSOLE_SCREENSHOTS=docs/screenshots keeps them."""
    out = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    now = timezone.now()
    customers = ["customer:1001", "customer:1044", "customer:2310", "customer:3172", "customer:4020"]
    refunds = []
    for index, subject in enumerate(customers):
        refund = record(
            cast.shop, subject=subject, amount=f"{40 + 17 * index}.00", executed_at=now - timedelta(days=index * 7)
        )
        points = record(cast.shop, "loyalty.points_grant", subject=subject, caused_by=(refund.external_id,))
        record(cast.shop, "tier.upgrade", subject=subject, caused_by=(points.external_id,))
        refunds.append(refund)
    closing = record(cast.shop, subject="customer:5501", executed_at=now - timedelta(days=29, hours=21))
    reasons = [
        "Refund approved against the wrong order number.",
        "Agent applied the refund twice for the same return.",
        "Customer was not eligible: the return window had passed.",
    ]
    for hours, refund, reason in zip((50, 26, 5), refunds[:3], reasons, strict=True):
        filed = request_rollback(requester=cast.bob, trigger="reviewer_error", reason=reason, actions=[refund.pk])
        Rollback.objects.filter(pk=filed.pk).update(created_at=now - timedelta(hours=hours))  # filed over days
    request_rollback(
        requester=cast.alice,
        trigger="reviewer_error",
        reason="Refund issued before the item was received.",
        actions=[closing.pk],
    )
    wires = [record(cast.shop, "wire.transfer", amount="12500.00", subject="vendor:88") for _ in range(2)]
    incident = request_rollback(
        requester=cast.ines,
        trigger="incident",
        reason="Payment agent sent transfers to a stale vendor account.",
        actions=[w.pk for w in wires],
    )
    executed = request_rollback(
        requester=cast.bob,
        trigger="reviewer_error",
        reason="Refund approved for the wrong customer account.",
        actions=[refunds[3].pk],
    )
    sign_off(executed.pk, signer=cast.victor, decision="approve", comment="Confirmed with the order history.")
    confirm_cascade(executed.pk, actor=cast.victor)  # reviewer_error stops at depth 1; the tier goes too
    sign_off(incident.pk, signer=incident_commander("ivan"), decision="approve", comment="Vendor confirmed.")

    verifier = open_as("vera")
    verifier.screenshot(path=str(out / "queue.png"), full_page=True)
    assert verifier.locator("tr.urgent").count() == 1

    reviewer_error = Rollback.objects.filter(state=RollbackState.PENDING_AUTHORIZATION, trigger="reviewer_error").last()
    assert reviewer_error is not None
    verifier.goto(f"{live_server.url}/console/rollbacks/{reviewer_error.pk}/")
    verifier.fill("#comment", "Checked the order history.")
    verifier.screenshot(path=str(out / "request.png"), full_page=True)

    verifier.goto(f"{live_server.url}/console/rollbacks/{executed.pk}/")
    assert "completed" in verifier.inner_text("[data-testid=rollback-state]")
    verifier.screenshot(path=str(out / "request-completed.png"), full_page=True)

    verifier.goto(f"{live_server.url}/console/actions/{refunds[3].pk}/")
    verifier.screenshot(path=str(out / "action.png"), full_page=True)
    agent = open_as("carl")
    agent.goto(f"{live_server.url}/console/actions/{refunds[4].pk}/")
    agent.fill("#id_reason", "The customer says the refund went to the wrong card.")
    with agent.expect_navigation():
        agent.click("button[value=preview]")
    assert agent.locator("[data-testid=plan]").count() == 1
    agent.screenshot(path=str(out / "action-filing.png"), full_page=True)

    commander = open_as("ines")
    commander.goto(f"{live_server.url}/console/rollbacks/new/")
    commander.select_option("#id_action_type", "loyalty.points_grant")
    commander.fill("#id_reason", "Loyalty agent granted points twice during the outage.")
    with commander.expect_navigation():
        commander.click("button[value=preview]")
    assert "actions selected" in commander.inner_text("[data-testid=plan]")
    commander.screenshot(path=str(out / "bulk.png"), full_page=True)

    verifier.goto(f"{live_server.url}/console/metrics/")
    assert verifier.locator(".chart svg").count() >= 6  # the three rate charts, the trend, self-flags, rejections
    verifier.screenshot(path=str(out / "metrics.png"), full_page=True)
    for name in ("queue", "request", "request-completed", "action", "action-filing", "bulk", "metrics"):
        assert (out / f"{name}.png").stat().st_size > 10_000


def test_the_progress_bar_follows_execution_and_the_page_reloads_when_it_ends(
    cast, live_server, open_as, eager_workers
):
    from unittest import mock

    import rollbacks.tasks as tasks
    from rollbacks.execution import run_rollback

    refund = record(cast.shop)
    rollback = request_rollback(requester=cast.bob, trigger="reviewer_error", reason="wrong", actions=[refund.pk])
    with mock.patch.object(tasks.run_rollback_task, "delay"):  # authorized, but no worker has picked it up yet
        sign_off(rollback.pk, signer=cast.vera, decision="approve")
    verifier = open_as("vera")
    verifier.goto(f"{live_server.url}/console/rollbacks/{rollback.pk}/")
    assert "authorized" in verifier.inner_text("[data-testid=rollback-state]")
    assert verifier.get_attribute("#progress", "hx-trigger") == "every 2s"

    run_rollback(rollback.pk)  # the worker's part, done here
    # The polled fragment sees the state moved on and reloads the page: no click from the verifier.
    # A locator, not wait_for_function: the content security policy forbids the page evaluating strings.
    verifier.locator("[data-testid=rollback-state]", has_text="completed").wait_for(timeout=15_000)
    assert "1 of 1 done" in verifier.inner_text("[data-testid=progress]")
