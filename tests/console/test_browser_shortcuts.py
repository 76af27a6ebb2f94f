"""Keyboard shortcuts and batch decisions in a real browser (headless Chromium) against a live server on PostgreSQL.

The shortcuts are console/static/console/shortcuts.js; the sheet that lists them is templates/console/_shortcuts.html.
CONSOLE_SCREENSHOTS=docs/screenshots keeps the screenshots of the sheet and of a batch result.
"""

import os
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection

from rollbacks.models import Rollback, RollbackState, SignOff
from rollbacks.services import request_rollback, sign_off
from tests.conftest import PASSWORD

from . import test_browser
from .conftest import record

# The browser and the signed-in page of the console's browser tests, shared as fixtures.
chromium, open_as = test_browser.chromium, test_browser.open_as

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="browser tests run against PostgreSQL"),
    pytest.mark.django_db(transaction=True),
]


def screenshots(tmp_path: Path) -> Path:
    out = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def reviewer_errors(cast, reasons):
    return [
        request_rollback(requester=cast.bob, trigger="reviewer_error", reason=reason, actions=[record(cast.shop).pk])
        for reason in reasons
    ]


def watch_errors(page) -> list[str]:
    """Script errors and console errors (a script the content security policy blocked shows up here)."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    return errors


def current(page) -> str | None:
    return page.locator("tr.is-current").get_attribute("data-rollback")


def test_a_verifier_moves_through_the_queue_opens_a_request_and_approves_it_from_the_keyboard(
    cast, live_server, open_as, no_workers, tmp_path
):
    older, newer = reviewer_errors(cast, ["Refund approved against the wrong order.", "Refund issued twice."])
    verifier = open_as("vera")
    errors = watch_errors(verifier)
    verifier.reload()  # the watch starts before the scripts run
    rows = [verifier.locator("tr[data-inbox-row]").nth(i).get_attribute("data-rollback") for i in range(2)]
    assert rows == [str(older.pk), str(newer.pk)]  # the inbox: most urgent (earliest window, then oldest) first
    first, second = older, newer

    verifier.keyboard.press("j")
    assert current(verifier) == rows[0]
    verifier.keyboard.press("j")
    assert current(verifier) == rows[1]
    verifier.keyboard.press("j")  # the last row stays current
    assert current(verifier) == rows[1]
    verifier.keyboard.press("k")
    assert current(verifier) == rows[0]

    # x ticks the current row for a batch decision
    verifier.keyboard.press("x")
    assert verifier.locator(f"input[name=rollback][value='{rows[0]}']").is_checked()
    verifier.keyboard.press("x")
    assert not verifier.locator(f"input[name=rollback][value='{rows[0]}']").is_checked()

    # ? opens the sheet as a modal dialog; Escape closes it and focus returns to the row
    sheet = verifier.locator("#shortcuts")
    assert not sheet.is_visible()
    verifier.keyboard.press("?")
    assert sheet.is_visible()
    assert verifier.locator("#shortcuts h2").inner_text() == "Keyboard shortcuts"
    listed = sheet.inner_text()
    assert "Next / previous request in the queue" in listed and "Ctrl+Enter" in listed and "Close this list" in listed
    verifier.keyboard.press("j")  # behind the dialog nothing moves
    assert current(verifier) == rows[0]
    verifier.screenshot(path=str(screenshots(tmp_path) / "shortcuts.png"))
    verifier.keyboard.press("Escape")
    assert not sheet.is_visible()
    verifier.keyboard.press("j")
    assert current(verifier) == rows[1]

    # Shortcuts are off while typing
    verifier.locator("#batch-comment").click()
    verifier.keyboard.type("jkx?")
    assert verifier.locator("#batch-comment").input_value() == "jkx?"
    assert current(verifier) == rows[1] and not sheet.is_visible()
    verifier.locator("#batch-comment").fill("")

    # Enter opens the current row (o does the same)
    verifier.locator("tr.is-current").focus()
    with verifier.expect_navigation():
        verifier.keyboard.press("Enter")
    verifier.wait_for_url(f"**/console/rollbacks/{second.pk}/")
    verifier.go_back()
    verifier.keyboard.press("k")
    verifier.keyboard.press("k")  # from the last row (a fresh page starts k at the bottom) or the kept one
    assert current(verifier) == rows[0]
    with verifier.expect_navigation():
        verifier.keyboard.press("o")
    verifier.wait_for_url(f"**/console/rollbacks/{first.pk}/")

    # a: the comment gets the focus with Approve armed; Ctrl+Enter submits through the button
    verifier.keyboard.press("a")
    assert verifier.evaluate("document.activeElement.id") == "comment"
    assert "armed" in (verifier.locator("button[data-key=a]").get_attribute("class") or "")
    verifier.keyboard.type("Checked the order history.")
    assert Rollback.objects.get(pk=first.pk).state == RollbackState.PENDING_AUTHORIZATION  # typing signs nothing
    with verifier.expect_navigation():
        verifier.keyboard.press("Control+Enter")
    verifier.wait_for_url(f"**/console/rollbacks/{first.pk}/")
    assert "You approved this rollback." in verifier.inner_text(".messages")
    signoff = SignOff.objects.get(rollback=first)
    assert (signoff.signer, signoff.decision, signoff.comment) == (cast.vera, "approve", "Checked the order history.")
    assert no_workers == [first.pk]
    assert errors == []


def test_r_arms_reject_and_escape_leaves_the_comment_without_submitting(cast, live_server, open_as, no_workers):
    (rollback,) = reviewer_errors(cast, ["Refund issued twice."])
    verifier = open_as("vera")
    verifier.goto(f"{live_server.url}/console/rollbacks/{rollback.pk}/")
    verifier.keyboard.press("r")
    assert "armed" in (verifier.locator("button[data-key=r]").get_attribute("class") or "")
    verifier.keyboard.type("Not an error")
    verifier.keyboard.press("Escape")
    assert "armed" not in (verifier.locator("button[data-key=r]").get_attribute("class") or "")
    verifier.keyboard.press("r")
    verifier.keyboard.type(": the refund was right.")
    with verifier.expect_navigation():
        verifier.keyboard.press("Control+Enter")
    assert "You rejected this rollback." in verifier.inner_text(".messages")
    assert SignOff.objects.get(rollback=rollback).comment == "Not an error: the refund was right."
    assert Rollback.objects.get(pk=rollback.pk).state == RollbackState.REJECTED


def test_a_batch_of_three_with_one_signed_meanwhile_reports_the_refusal_and_why(
    cast, live_server, open_as, no_workers, tmp_path
):
    filed = reviewer_errors(
        cast,
        [
            "Refund approved against the wrong order number.",
            "Agent applied the refund twice for the same return.",
            "Customer was not eligible: the return window had passed.",
        ],
    )
    # morgan verifies reviewer errors and commands incidents: the queue holds both triggers
    morgan = User.objects.create_user("morgan", password=PASSWORD)
    morgan.groups.set(Group.objects.filter(name__in=["verifier", "incident_commander"]))
    incident = request_rollback(
        requester=cast.ines,
        trigger="incident",
        reason="Payment agent sent a transfer to a stale account.",
        actions=[record(cast.shop, "wire.transfer").pk],
    )
    page = open_as("morgan")
    errors = watch_errors(page)
    page.reload()
    for rollback in filed:
        page.locator(f"input[name=rollback][value='{rollback.pk}']").check()
    # a batch covers one trigger: the incident's box is disabled once a reviewer error is ticked
    assert page.locator(f"input[name=rollback][value='{incident.pk}']").is_disabled()
    assert "3 selected (reviewer error)" in page.inner_text("[data-batch-status]")

    sign_off(filed[1].pk, signer=cast.victor, decision="approve")  # a colleague is quicker with one of them
    page.fill("#batch-comment", "Checked each order's history.")
    with page.expect_navigation():
        page.click("#batch-decision button[value=approve]")
    summary = page.inner_text("[data-testid=batch-summary]")
    assert "You approved 2 of 3 reviewer error requests; 1 refused." in summary
    refused = page.locator("[data-testid=batch-refused] tbody tr")
    assert refused.count() == 1
    assert refused.get_attribute("data-rollback") == str(filed[1].pk)
    assert "it takes sign-offs only while pending_authorization" in refused.inner_text()
    signed = page.locator("[data-testid=batch-signed] tbody tr")
    assert {signed.nth(i).get_attribute("data-rollback") for i in range(signed.count())} == {
        str(filed[0].pk),
        str(filed[2].pk),
    }
    page.screenshot(path=str(screenshots(tmp_path) / "batch-result.png"), full_page=True)
    assert Rollback.objects.get(pk=incident.pk).state == RollbackState.PENDING_AUTHORIZATION
    assert set(SignOff.objects.filter(signer=morgan).values_list("rollback_id", flat=True)) == {
        filed[0].pk,
        filed[2].pk,
    }
    assert errors == []
