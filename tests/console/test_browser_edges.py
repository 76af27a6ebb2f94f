"""The console's fixed rough edges in a real browser (headless Chromium) against a live server on PostgreSQL:
what people see at 1280 px and on a 390 px phone. CONSOLE_SCREENSHOTS=docs/screenshots keeps the screenshots."""

import os
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import connection

from rollbacks.models import Rollback, RollbackState
from rollbacks.services import request_rollback, sign_off
from tests.conftest import PASSWORD

from . import test_browser
from .conftest import incident_commander, record

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="browser tests run against PostgreSQL"),
    pytest.mark.django_db(transaction=True),
]
PHONE = {"width": 390, "height": 844}
# The browser fixtures of test_browser.py, shared (pytest finds fixtures among a module's names).
chromium = test_browser.chromium
open_as = test_browser.open_as


@pytest.fixture
def shots(tmp_path) -> Path:  # type: ignore[no-untyped-def]
    out = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture
def open_on_phone(chromium, live_server):  # type: ignore[no-untyped-def]
    """A signed-in page in a 390 px wide viewport, as a phone shows it."""
    contexts = []

    def sign_in(username: str):  # type: ignore[no-untyped-def]
        context = chromium.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        with page.expect_navigation():
            page.click("button[type=submit]")
        return page

    yield sign_in
    for context in contexts:
        context.close()


CHAIN = ["loyalty.points_grant", "tier.upgrade", "benefits.reevaluate", "membership.reinstate"]


def _deep_chain(shop, levels: int):  # type: ignore[no-untyped-def]
    """A refund with `levels` - 1 actions downstream of it, one per level, along the demo's cascade (whose types
    cycle: a reinstated membership re-applies a tier upgrade)."""
    refund = record(shop)
    previous = refund
    for level in range(levels - 1):
        action_type = CHAIN[level] if level < len(CHAIN) else CHAIN[1 + (level - 1) % 3]
        previous = record(shop, action_type, caused_by=(previous.external_id,))
    return refund


def test_no_main_page_overflows_sideways_on_a_390_px_phone(cast, live_server, open_on_phone, eager_workers, shots):
    refund = record(cast.shop, subject="customer:very-long-subject-name-that-would-push-the-page-0001")
    points = record(cast.shop, "loyalty.points_grant", caused_by=(refund.external_id,))
    record(cast.shop, "tier.upgrade", caused_by=(points.external_id,))
    rollback = request_rollback(
        requester=cast.bob, trigger="reviewer_error", reason="The refund was approved twice.", actions=[refund.pk]
    )
    done = request_rollback(
        requester=cast.bob, trigger="reviewer_error", reason="Wrong customer.", actions=[record(cast.shop).pk]
    )
    sign_off(done.pk, signer=cast.victor, decision="approve", comment="Checked.")

    phone = open_on_phone("vera")
    pages = {
        "queue": "/console/",
        "request": f"/console/rollbacks/{rollback.pk}/",
        "request-completed": f"/console/rollbacks/{done.pk}/",
        "action": f"/console/actions/{refund.pk}/",
        "actions": "/console/actions/",
        "remediation": "/console/remediation/",
        "metrics": "/console/metrics/",
    }
    widths = {}
    for name, path in pages.items():
        phone.goto(f"{live_server.url}{path}")
        widths[name] = phone.evaluate("document.scrollingElement.scrollWidth")
    assert all(width <= 390 for width in widths.values()), widths

    phone.goto(f"{live_server.url}/console/rollbacks/{rollback.pk}/")
    phone.screenshot(path=str(shots / "request-390px.png"), full_page=True)
    filer = open_on_phone("ines")
    filer.goto(f"{live_server.url}/console/rollbacks/new/")
    assert filer.evaluate("document.scrollingElement.scrollWidth") <= 390
    assert (shots / "request-390px.png").stat().st_size > 10_000


def test_a_deep_cascade_says_it_scrolls_and_lists_its_levels(cast, live_server, open_as, shots):
    refund = _deep_chain(cast.shop, 7)
    rollback = request_rollback(
        requester=cast.ines, trigger="incident", reason="Agent run looped.", actions=[refund.pk], max_cascade_depth=3
    )
    commander = open_as("ines")
    commander.goto(f"{live_server.url}/console/rollbacks/{rollback.pk}/")
    cue = commander.locator("[data-testid=scroll-cue]")
    assert cue.is_visible() and "depth 6" in cue.inner_text()
    levels = commander.locator("[data-testid=levels] li")
    assert levels.count() == 7 and "Depth 6" in levels.nth(6).inner_text()
    # The drawing is wider than its card: it scrolls there, and the page itself does not.
    graph = commander.locator("[data-testid=cascade]")
    assert graph.evaluate("element => element.scrollWidth > element.clientWidth")
    assert commander.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
    card = commander.locator("section.card", has=graph)
    card.scroll_into_view_if_needed()
    card.screenshot(path=str(shots / "cascade-wide.png"))

    short = request_rollback(
        requester=cast.ines, trigger="incident", reason="One refund.", actions=[record(cast.shop).pk]
    )
    commander.goto(f"{live_server.url}/console/rollbacks/{short.pk}/")
    assert commander.locator("[data-testid=scroll-cue]").count() == 0


def test_the_progress_bar_is_empty_at_0_of_1_done_while_a_step_waits_for_a_person(
    cast,
    live_server,
    open_as,
    eager_workers,
):
    wire = record(cast.shop, "wire.transfer", amount="900.00")
    rollback = request_rollback(requester=cast.ines, trigger="incident", reason="wrong payee", actions=[wire.pk])
    sign_off(rollback.pk, signer=incident_commander("ivan"), decision="approve")
    commander = open_as("ines")
    commander.goto(f"{live_server.url}/console/rollbacks/{rollback.pk}/")
    progress = commander.inner_text("[data-testid=progress]")
    assert "0 of 1 done (0 %)" in progress and "1 need a person" in progress
    assert commander.get_attribute("[role=progressbar]", "aria-valuenow") == "0"
    done_width = commander.locator(".progress > .done").evaluate("element => element.getBoundingClientRect().width")
    assert done_width == 0
    # The step names its remediation task, and the task's row links back to the step.
    step_task = commander.locator("[data-testid^=step-task-]")
    assert "Remediation task" in step_task.inner_text()


def test_a_trail_row_opens_to_its_data_and_the_chain_says_whether_it_verifies(
    cast,
    live_server,
    open_as,
    settings,
    tmp_path,
):
    from audit.verification import verify_and_checkpoint

    settings.AUDIT_ANCHOR_PATH = str(tmp_path / "anchors.jsonl")
    refund = record(cast.shop)
    rollback = request_rollback(requester=cast.bob, trigger="reviewer_error", reason="wrong", actions=[refund.pk])
    assert verify_and_checkpoint().ok
    verifier = open_as("vera")
    verifier.goto(f"{live_server.url}/console/rollbacks/{rollback.pk}/")
    assert "verified" in verifier.inner_text("[data-testid=chain-standing]")
    data = verifier.locator("[data-testid^=event-data-]").first
    assert not data.is_visible()
    verifier.locator("[data-testid=audit] summary").first.click()
    assert data.is_visible() and "{" in data.inner_text()
    assert "✓ verified" in verifier.inner_text("[data-testid=audit]")


def test_cancel_asks_on_a_page_of_its_own_before_anything_happens(cast, live_server, open_as, shots):
    rollback = request_rollback(
        requester=cast.bob, trigger="reviewer_error", reason="wrong", actions=[record(cast.shop).pk]
    )
    requester = open_as("bob")
    requester.goto(f"{live_server.url}/console/rollbacks/{rollback.pk}/")
    with requester.expect_navigation():
        requester.click("[data-testid=cancel]")
    assert "Cancel rollback" in requester.inner_text("h1")
    requester.screenshot(path=str(shots / "cancel-confirm.png"), full_page=True)
    with requester.expect_navigation():
        requester.click("text=No, keep it")
    assert Rollback.objects.get(pk=rollback.pk).state == RollbackState.PENDING_AUTHORIZATION

    with requester.expect_navigation():
        requester.click("[data-testid=cancel]")
    with requester.expect_navigation():
        requester.click("[data-testid=confirm-cancel]")
    assert Rollback.objects.get(pk=rollback.pk).state == RollbackState.CANCELLED
    assert "cancelled" in requester.inner_text("[data-testid=rollback-state]")


def test_a_rollback_the_reader_may_not_open_has_no_link_and_a_hidden_one_is_the_consoles_404_with_debug_on(
    cast,
    live_server,
    open_as,
    settings,
    shots,
):
    settings.DEBUG = True  # as the demo runs
    refund = record(cast.shop)
    incident = request_rollback(requester=cast.ines, trigger="incident", reason="agent run", actions=[refund.pk])
    agent = open_as("carl")
    agent.goto(f"{live_server.url}/console/actions/{refund.pk}/")
    row = agent.locator(f"[data-testid=action-rollbacks] tr[data-rollback='{incident.pk}']")
    assert "not yours to open" in row.inner_text() and row.locator("a").count() == 0

    agent.goto(f"{live_server.url}/console/rollbacks/{incident.pk}/")  # typed in by hand
    assert "Not found" in agent.inner_text("h1")
    assert agent.locator(".topbar").count() == 1 and "DEBUG" not in agent.content()
    agent.screenshot(path=str(shots / "not-found.png"), full_page=True)


def test_view_site_takes_the_administrator_without_a_role_to_a_page_of_useful_links(
    cast,
    live_server,
    chromium,
):
    User.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    context = chromium.new_context(viewport={"width": 1280, "height": 800})  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("input[type=submit]")
    with page.expect_navigation():
        page.click("text=View site")
    assert page.url.endswith("/console/start/")
    assert "Signed in as an administrator" in page.inner_text("h1")
    with page.expect_navigation():
        page.click("text=Back to the admin")
    assert page.url.endswith("/admin/")
    context.close()


def test_the_bulk_preview_says_how_many_actions_were_already_reversed(
    cast,
    live_server,
    open_as,
    eager_workers,
    shots,
):
    grants = [record(cast.shop, "loyalty.points_grant", subject=f"customer:{n}") for n in range(3)]
    first = request_rollback(requester=cast.ines, trigger="incident", reason="once", actions=[grants[0].pk])
    sign_off(first.pk, signer=incident_commander("ivan"), decision="approve")
    assert Rollback.objects.get(pk=first.pk).state == RollbackState.COMPLETED

    commander = open_as("ines")
    commander.goto(f"{live_server.url}/console/rollbacks/new/")
    commander.select_option("#id_action_type", "loyalty.points_grant")
    commander.fill("#id_reason", "Loyalty agent granted points twice during the outage.")
    with commander.expect_navigation():
        commander.click("button[value=preview]")
    note = commander.inner_text("[data-testid=already-reversed-note]")
    assert "1 of the 3 planned actions was already reversed" in note
    assert commander.inner_text("[data-testid=already-reversed]").startswith("1")
    commander.locator("[data-testid=plan]").screenshot(path=str(shots / "bulk-already-reversed.png"))
