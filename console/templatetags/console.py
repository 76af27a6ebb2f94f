"""Small presentation filters: labels for identifiers, state badges, durations and reversal windows."""

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from audit.verification import Standing
from policies.labels import label as label_of

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
    # Chips read in lower case ("pending authorization"); the words are the same as the label's.
    return format_html('<span class="badge {}" data-value="{}">{}</span>', tone, value, label_of(value).lower())


@register.filter
def label(value: object) -> str:
    """An identifier as people read it: `customer_service` -> "Customer service" (policies.labels)."""
    return label_of(value)


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
def entry(mapping: Mapping[Any, Any], key: Any) -> Any:
    """`mapping[key]`, or None: a view's lookup table read by a template (`task_of_step|entry:step.pk`)."""
    return mapping.get(key)


@register.filter
def verified(standing: Standing, seq: int) -> bool:
    return standing.verified(seq)


@register.filter
def pretty_json(text: str) -> str:
    """An event's stored canonical JSON, indented for reading (the stored text is what is hashed)."""
    try:
        return json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False)
    except ValueError:
        return text


@register.filter
def get_kind(labels: dict[str, str], kind: str) -> str:
    """An inbox kind's label from the view's mapping."""
    return labels.get(kind, kind)
