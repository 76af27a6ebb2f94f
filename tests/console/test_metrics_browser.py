"""The metrics page in a real browser (headless Chromium) at 1280 px: the new charts are drawn, nothing overflows
sideways, and the page's screenshot is what docs/screenshots/metrics-people.png shows."""

import os
from datetime import datetime, timedelta
from pathlib import Path

from django.contrib.auth.models import Group, User
from django.utils import timezone

from rollbacks.models import Rollback
from rollbacks.services import request_rollback, sign_off

from . import test_browser
from .conftest import incident_commander, record

# The browser fixtures of the console's browser tests, shared rather than copied.
chromium, open_as = test_browser.chromium, test_browser.open_as

pytestmark = test_browser.pytestmark


def test_the_metrics_page_draws_the_new_charts_without_overflow_at_1280_px(
    cast, live_server, open_as, eager_workers, tmp_path
):
    """Five weeks: alice flags more of her own approvals each week (vera rejects one a week, victor approves the
    rest and every flag bob raises, never rejecting: a possible rubber stamp); incidents over wire transfers."""
    out = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    now = timezone.now()
    ivan = incident_commander("ivan")
    rhea = User.objects.create_user("rhea")
    rhea.groups.add(Group.objects.get(name="reviewer"))

    def decided(filed: Rollback, signer: User, decision: str, *, filed_at: datetime, hours: int) -> None:
        sign_off(filed.pk, signer=signer, decision=decision)
        authorized = filed_at + timedelta(hours=hours) if decision == "approve" else None
        Rollback.objects.filter(pk=filed.pk).update(created_at=filed_at, authorized_at=authorized)

    for week in range(5):  # 0 is this week, 4 four weeks ago
        executed_at = now - timedelta(days=7 * week, hours=6)
        filed_at = executed_at + timedelta(hours=2)
        refunds = [record(cast.shop, amount=f"{30 + 5 * n}.00", executed_at=executed_at) for n in range(5)]
        for n, refund in enumerate(refunds[: 4 - week]):
            flagged = request_rollback(
                requester=cast.alice, trigger="reviewer_error", reason="approved too fast", actions=[refund.pk]
            )
            signer, decision = (cast.vera, "reject") if n == 0 else (cast.victor, "approve")
            decided(flagged, signer, decision, filed_at=filed_at, hours=1 + n)
        other = request_rollback(
            requester=cast.bob, trigger="reviewer_error", reason="wrong customer", actions=[refunds[4].pk]
        )
        decided(other, cast.victor, "approve", filed_at=filed_at, hours=3)
        record(cast.shop, approved_by="rhea", executed_at=executed_at)
        wire = record(cast.shop, "wire.transfer", amount="900.00", approved_by="bob", executed_at=executed_at)
        incident = request_rollback(requester=cast.ines, trigger="incident", reason="stale vendor", actions=[wire.pk])
        decided(incident, ivan, "approve" if week % 2 else "reject", filed_at=filed_at, hours=8 + week)
    request_rollback(requester=cast.carl, trigger="customer_request", reason="asked", actions=[record(cast.shop).pk])

    page = open_as("audrey")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/console/metrics/")
    for testid in ("time-to-decision", "waiting", "weekly-trend", "reviewer-self-flags", "signer-decisions"):
        assert page.locator(f"[data-testid={testid}]").is_visible()
    trend = page.locator("[data-testid=weekly-trend] svg[role=img]")
    assert trend.get_attribute("aria-label") == "Rollbacks filed per week, by trigger"
    assert page.locator("[data-testid=weekly-trend] svg rect title").count() >= 6
    assert page.locator("[data-testid=reviewer-self-flags] td svg").count() == 3  # alice, rhea and bob (the wires)
    assert page.locator("[data-testid=signer-decisions] [data-rubber-stamp]").inner_text().startswith("victor")
    page.click("[data-testid=weekly-trend] summary")
    assert page.locator("[data-testid=weekly-trend] details table").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    overflowing = page.evaluate(
        """() => [...document.querySelectorAll('section.card, svg')]
              .filter(el => el.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
              .map(el => el.dataset.testid || el.getAttribute('aria-label') || el.tagName)"""
    )
    assert overflowing == []
    page.screenshot(path=str(out / "metrics-people.png"), full_page=True)
    assert (out / "metrics-people.png").stat().st_size > 10_000
