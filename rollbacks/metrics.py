"""What rollbacks cost and how often they happen: the figures behind GET /api/v1/metrics/ and the metrics page.

Every figure is a read over a period [since, until):
- rollback rate: actions executed in the period, and how many of them were rolled back since (their state says
  reversed, partially reversed or manually resolved), by action type and by the person who approved them;
- time to rollback: from an action's approval to its step's completed reversal, for steps finished in the
  period (p50, p90 and max, in seconds);
- reasons by trigger: the rollbacks requested in the period, by trigger, with their most frequent reasons;
- cost: the amount reversed (Action.amount of steps reversed in the period), the compensations sent and the
  manual remediations opened.
"""

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from actions.models import Action, ActionState
from rollback_console.errors import Invalid
from rollbacks.models import Communication, CommunicationStatus, RemediationTask, Rollback, Step, StepOutcome
from rollbacks.rules import oversees_rollbacks

DEFAULT_PERIOD = timedelta(days=30)
TOP_REASONS = 5
ROLLED_BACK_STATES = (ActionState.REVERSED, ActionState.PARTIALLY_REVERSED, ActionState.MANUALLY_RESOLVED)
# A step's reversal is complete when the integrator confirmed it (a failed compensation does not undo that)
# or a person handled it by hand; `already_reversed` was reversed by someone else, so it has no time of ours.
COMPLETED_OUTCOMES = (StepOutcome.REVERSED, StepOutcome.COMPENSATION_FAILED, StepOutcome.MANUAL_DONE)
AMOUNT_OUTCOMES = (StepOutcome.REVERSED, StepOutcome.COMPENSATION_FAILED)


def may_read_metrics(user: Any) -> bool:
    """Auditors, and everyone who signs some rollback under the current policy (rollbacks.rules)."""
    return oversees_rollbacks(user)


@dataclass(frozen=True)
class Period:
    since: datetime
    until: datetime


# Periods are moved by a day (a bare `until` date) and by DEFAULT_PERIOD, and PostgreSQL compares in UTC:
# moments this close to datetime's own limits (years 1 and 9999) would overflow on the way.
_EARLIEST = datetime(1, 1, 1, tzinfo=UTC) + DEFAULT_PERIOD + timedelta(days=2)
_LATEST = datetime(9999, 12, 31, tzinfo=UTC) - timedelta(days=2)
_MOMENT_HELP = "Give an ISO 8601 date (2026-11-28) or date and time (2026-11-28T10:00:00Z)."


def _parse_moment(name: str, text: str, *, end_of_day: bool) -> datetime:
    try:
        moment = parse_datetime(text) if "T" in text or " " in text else None
        if moment is None:
            day = parse_date(text)
            if day is None:
                raise Invalid({name: [_MOMENT_HELP]})
            moment = datetime.combine(day, datetime.min.time())
            if end_of_day:
                moment += timedelta(days=1)
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment, timezone.get_current_timezone())
        moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise Invalid({name: [f"{text!r} is not a valid date or time. {_MOMENT_HELP}"]}) from None
    if not _EARLIEST <= moment <= _LATEST:
        raise Invalid({name: [f"Out of range: give a time between {_EARLIEST:%Y-%m-%d} and {_LATEST:%Y-%m-%d}."]})
    return moment


def parse_period(since: str | None, until: str | None, *, now: datetime | None = None) -> Period:
    """The period a caller asked for. A bare date in `until` includes that whole day. Raises Invalid."""
    errors: dict[str, Any] = {}
    end = start = None
    try:
        end = _parse_moment("until", until, end_of_day=True) if until else (now or timezone.now())
    except Invalid as exc:
        errors.update(exc.errors)
    try:
        start = _parse_moment("since", since, end_of_day=False) if since else None
    except Invalid as exc:
        errors.update(exc.errors)
    if errors:
        raise Invalid(errors)
    assert end is not None
    start = start or end - DEFAULT_PERIOD
    if start >= end:
        raise Invalid({"since": ["must be before until"]})
    return Period(since=start, until=end)


def _percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile: a value that was observed, which reads better than an interpolated one."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def _rate_rows(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    result = [
        {
            key: row[key],
            "recorded": row["recorded"],
            "rolled_back": row["rolled_back"],
            "rate": round(row["rolled_back"] / row["recorded"], 4) if row["recorded"] else 0.0,
        }
        for row in rows
    ]
    result.sort(key=lambda row: (-row["rate"], -row["recorded"], str(row[key])))
    return result


def rollback_rates(period: Period) -> dict[str, list[dict[str, Any]]]:
    actions = Action.objects.filter(executed_at__gte=period.since, executed_at__lt=period.until)
    counts = {
        "recorded": Count("id"),
        "rolled_back": Count("id", filter=Q(state__in=ROLLED_BACK_STATES)),
    }
    by_type: list[dict[str, Any]] = [
        {"action_type": action_type, "recorded": recorded, "rolled_back": rolled_back}
        for action_type, recorded, rolled_back in actions.values_list("action_type").annotate(**counts).order_by()
    ]
    by_approver: list[dict[str, Any]] = [
        {"approved_by": username, "recorded": recorded, "rolled_back": rolled_back}
        for username, recorded, rolled_back in actions.values_list("approved_by__username")
        .annotate(**counts)
        .order_by()
    ]
    return {
        "by_action_type": _rate_rows(by_type, "action_type"),
        "by_approver": _rate_rows(by_approver, "approved_by"),
    }


def time_to_rollback(period: Period) -> dict[str, Any]:
    pairs = Step.objects.filter(
        outcome__in=COMPLETED_OUTCOMES, finished_at__gte=period.since, finished_at__lt=period.until, is_loop=False
    ).values_list("action__approved_at", "finished_at")
    seconds = sorted(
        max(0.0, (finished - approved).total_seconds()) for approved, finished in pairs if finished is not None
    )
    if not seconds:
        return {"count": 0, "p50_seconds": None, "p90_seconds": None, "max_seconds": None}
    return {
        "count": len(seconds),
        "p50_seconds": _percentile(seconds, 0.5),
        "p90_seconds": _percentile(seconds, 0.9),
        "max_seconds": seconds[-1],
    }


def reasons_by_trigger(period: Period) -> list[dict[str, Any]]:
    rollbacks = Rollback.objects.filter(created_at__gte=period.since, created_at__lt=period.until)
    totals = dict(rollbacks.values_list("trigger").annotate(n=Count("id")).order_by())
    reasons: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rollbacks.values("trigger", "reason").annotate(n=Count("id")).order_by("trigger", "-n", "reason"):
        if len(reasons[row["trigger"]]) < TOP_REASONS:
            reasons[row["trigger"]].append({"reason": row["reason"], "count": row["n"]})
    return [
        {"trigger": trigger, "rollbacks": total, "top_reasons": reasons[trigger]}
        for trigger, total in sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    ]


def _money(amount: Decimal) -> str:
    """At least two decimals, no trailing zeros beyond them: "50.00", "12.3456"."""
    exact = amount.normalize()
    exponent = exact.as_tuple().exponent
    more_than_cents = isinstance(exponent, int) and exponent < -2
    return format(exact if more_than_cents else amount.quantize(Decimal("0.01")), "f")


def rollback_cost(period: Period) -> dict[str, Any]:
    reversed_steps = Step.objects.filter(
        outcome__in=AMOUNT_OUTCOMES, finished_at__gte=period.since, finished_at__lt=period.until, is_loop=False
    )
    amount = reversed_steps.aggregate(total=Sum("action__amount"))["total"] or Decimal("0")
    compensations = Communication.objects.filter(
        step__isnull=False, status=CommunicationStatus.SENT, sent_at__gte=period.since, sent_at__lt=period.until
    ).count()
    remediations = RemediationTask.objects.filter(created_at__gte=period.since, created_at__lt=period.until).aggregate(
        opened=Count("id"), done=Count("id", filter=Q(done_at__isnull=False))
    )
    return {
        "amount_reversed": _money(amount),
        "steps_reversed": reversed_steps.count(),
        "compensations": compensations,
        "manual_remediations": remediations["opened"],
        "manual_remediations_done": remediations["done"],
    }


def rollback_metrics(period: Period) -> dict[str, Any]:
    """Every figure for one period, as the API returns it."""
    return {
        "since": period.since.isoformat(),
        "until": period.until.isoformat(),
        "rollback_rate": rollback_rates(period),
        "time_to_rollback": time_to_rollback(period),
        "reasons_by_trigger": reasons_by_trigger(period),
        "cost": rollback_cost(period),
    }
