"""Small presentation filters: state badges, durations and the time left on a reversal window."""

from datetime import datetime, timedelta

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()

GOOD = {
    "completed",
    "authorized",
    "reversed",
    "already_reversed",
    "manual_done",
    "sent",
    "approve",
    "manually_resolved",
}
WARN = {
    "pending_authorization",
    "paused",
    "partially_completed",
    "compensation_failed",
    "prerequisites_unmet",
    "loop_stopped",
    "awaiting_confirmation",
    "rollback_pending",
    "partially_reversed",
    "manual_remediation",
}
BAD = {"failed", "rejected", "not_reversible", "reject", "reversal_failed"}
INFO = {"executing", "communicating", "pending"}
# A window closing within this stands out in the queue and on the request page.
CLOSING_SOON = timedelta(hours=24)


@register.filter
def badge(value: str) -> SafeString:
    tones = (("good", GOOD), ("warn", WARN), ("bad", BAD), ("info", INFO))
    tone = next((name for name, values in tones if value in values), "")
    return format_html('<span class="badge {}">{}</span>', tone, str(value).replace("_", " "))


def _span(delta: timedelta) -> str:
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{seconds} s"


@register.filter
def ago(moment: datetime | None) -> str:
    """'just now', '5 h ago', '2 d 2 h ago': shorter than timesince, for tables."""
    if moment is None:
        return "—"
    elapsed = timezone.now() - moment
    return "just now" if elapsed < timedelta(minutes=1) else f"{_span(elapsed)} ago"


@register.filter
def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return _span(timedelta(seconds=seconds))


@register.filter
def window_left(ends_at: datetime | None) -> SafeString:
    """'no window', 'closes in 3 h' (highlighted when soon) or 'closed 2 d ago'."""
    if ends_at is None:
        return format_html('<span class="muted">no window</span>')
    left = ends_at - timezone.now()
    if left <= timedelta(0):
        return format_html(
            '<span class="window-closed" title="{}">closed {} ago</span>', ends_at.isoformat(), _span(left)
        )
    css = "window-closing" if left <= CLOSING_SOON else ""
    return format_html('<span class="{}" title="{}">closes in {}</span>', css, ends_at.isoformat(), _span(left))


@register.filter
def closing_soon(ends_at: datetime | None) -> bool:
    return ends_at is not None and timedelta(0) < ends_at - timezone.now() <= CLOSING_SOON


@register.filter
def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


@register.filter
def trigger_label(value: str) -> str:
    """A trigger as people read it ('Reviewer Error'), as the queue's tabs name it."""
    return str(value).replace("_", " ").title()


@register.filter
def get_kind(labels: dict[str, str], kind: str) -> str:
    """An inbox kind's label from the view's mapping."""
    return labels.get(kind, kind)
