"""What rollbacks cost and how often they happen: the figures behind GET /api/v1/metrics/ and the metrics page.

Every figure is a read over a period [since, until):
- rollback rate: actions executed in the period, and how many of them were rolled back since (their state says
  reversed, partially reversed or manually resolved), by action type and by the person who approved them;
- time to rollback: from an action's approval to its step's completed reversal, for steps finished in the
  period (p50, p90 and max, in seconds);
- reasons by trigger: the rollbacks requested in the period, by trigger, with their most frequent reasons;
- cost: the amount reversed (Action.amount of steps reversed in the period), per currency (the payload's
  `currency`; amounts in different currencies are never added up), the compensations sent and the manual
  remediations opened.

And the figures people act on (issue 10):
- time to decision: from filing to authorization, per trigger, for rollbacks authorized in the period;
- waiting: requests pending now, and those pending longer than their trigger's `remind_after`;
- windows closed while waiting: requests whose earliest reversal window closed in the period while they waited;
- the weekly trend of rollbacks filed, by trigger;
- per reviewer, the share of their approvals that they later flagged themselves as `reviewer_error`, and its
  weekly trend (reversal being possible must not make approving loose);
- per signer, how often they reject; one who never rejects over RUBBER_STAMP_MIN_DECISIONS decisions or more is
  marked as a possible rubber stamp.
Each figure is one query (two for waiting: the current policy is read once), however many rollbacks, actions,
reviewers or signers there are.
"""

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import reduce
from operator import or_
from typing import Any

from django.db.models import Count, DurationField, Exists, ExpressionWrapper, F, OuterRef, Q, Sum
from django.db.models.functions import TruncWeek
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from actions.models import Action, ActionState
from policies.manifest import parse_duration
from policies.selectors import NoPolicyLoaded, current_policy
from rollback_console.errors import Invalid
from rollbacks.models import (
    Communication,
    CommunicationStatus,
    RemediationTask,
    Rollback,
    RollbackState,
    SignOff,
    SignoffDecision,
    Step,
    StepOutcome,
    Trigger,
)
from rollbacks.rules import oversees_rollbacks

DEFAULT_PERIOD = timedelta(days=30)
TOP_REASONS = 5
ROLLED_BACK_STATES = (ActionState.REVERSED, ActionState.PARTIALLY_REVERSED, ActionState.MANUALLY_RESOLVED)
# A step's reversal is complete when the integrator confirmed it (a failed compensation does not undo that)
# or a person handled it by hand; `already_reversed` was reversed by someone else, so it has no time of ours.
COMPLETED_OUTCOMES = (StepOutcome.REVERSED, StepOutcome.COMPENSATION_FAILED, StepOutcome.MANUAL_DONE)
AMOUNT_OUTCOMES = (StepOutcome.REVERSED, StepOutcome.COMPENSATION_FAILED)
# A signer who approved this many decisions in the period and rejected none is marked a possible rubber stamp:
# below it, a clean record is as likely to be a run of good requests.
RUBBER_STAMP_MIN_DECISIONS = 10
# The weekly trends cover at most this many weeks, the last ones of the period (up to now).
MAX_TREND_WEEKS = 156


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


def _amounts_by_currency(steps: Any) -> list[dict[str, Any]]:
    """The reversed amounts summed per currency (the payload's `currency`; null when it names none)."""
    totals: dict[str | None, list[Any]] = {}
    rows = (
        steps.filter(action__amount__isnull=False)
        .values_list("action__payload__currency")
        .annotate(total=Sum("action__amount"), steps=Count("id"))
        .order_by()
    )
    for currency, total, count in rows:
        key = None if currency is None else str(currency)
        entry = totals.setdefault(key, [Decimal("0"), 0])
        entry[0] += total
        entry[1] += count
    return [
        {"currency": currency, "amount": _money(total), "steps": count}
        for currency, (total, count) in sorted(totals.items(), key=lambda item: (item[0] is None, item[0] or ""))
    ]


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
        "amount_reversed_by_currency": _amounts_by_currency(reversed_steps),
        "steps_reversed": reversed_steps.count(),
        "compensations": compensations,
        "manual_remediations": remediations["opened"],
        "manual_remediations_done": remediations["done"],
    }


def _seconds_summary(seconds: list[float]) -> dict[str, Any]:
    seconds.sort()
    return {
        "count": len(seconds),
        "p50_seconds": _percentile(seconds, 0.5) if seconds else None,
        "p90_seconds": _percentile(seconds, 0.9) if seconds else None,
    }


def time_to_decision(period: Period) -> list[dict[str, Any]]:
    """From filing to authorization, per trigger, for the rollbacks authorized in the period."""
    # The difference is taken in SQL: one interval per row travels instead of two timestamps.
    waits = (
        Rollback.objects.filter(authorized_at__gte=period.since, authorized_at__lt=period.until)
        .annotate(wait=ExpressionWrapper(F("authorized_at") - F("created_at"), output_field=DurationField()))
        .values_list("trigger", "wait")
    )
    by_trigger: dict[str, list[float]] = defaultdict(list)
    for trigger, wait in waits:
        by_trigger[trigger].append(max(0.0, wait.total_seconds()))
    return [{"trigger": trigger, **_seconds_summary(by_trigger[trigger])} for trigger in sorted(by_trigger)]


def remind_after(trigger: Any) -> timedelta | None:
    """A trigger's `remind_after` from the parsed manifest, whichever shape the loader gives it (a duration
    text such as "4h", or already a timedelta); None where the trigger sets none."""
    value = trigger.get("remind_after") if isinstance(trigger, Mapping) else getattr(trigger, "remind_after", None)
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError:
            return None
    return None


def waiting(now: datetime) -> dict[str, Any]:
    """The requests pending now, per trigger, and those pending longer than their trigger's reminder delay."""
    try:
        triggers: Mapping[str, Any] = current_policy()[1].triggers
    except NoPolicyLoaded:
        triggers = {}
    delays = {name: delay for name, trigger in triggers.items() if (delay := remind_after(trigger)) is not None}
    counts: dict[str, Any] = {"pending": Count("id")}
    if delays:
        overdue = reduce(or_, (Q(trigger=name, created_at__lt=now - delay) for name, delay in delays.items()))
        counts["past_reminder"] = Count("id", filter=overdue)
    rows: dict[str, dict[str, Any]] = {
        row["trigger"]: dict(row)
        for row in Rollback.objects.filter(state=RollbackState.PENDING_AUTHORIZATION)
        .values("trigger")
        .annotate(**counts)
        .order_by()
    }
    by_trigger = [
        {
            "trigger": name,
            "remind_after_seconds": delays[name].total_seconds() if name in delays else None,
            "pending": rows.get(name, {}).get("pending", 0),
            "past_reminder": rows.get(name, {}).get("past_reminder", 0),
        }
        for name in sorted(set(triggers) | set(rows))
    ]
    return {
        "as_of": now.isoformat(),
        "pending": sum(row["pending"] for row in by_trigger),
        "past_reminder": sum(row["past_reminder"] for row in by_trigger),
        "by_trigger": by_trigger,
    }


def windows_closed_while_waiting(period: Period, now: datetime) -> dict[str, Any]:
    """Requests whose earliest reversal window closed in the period (up to now) after they were filed and before
    anyone decided: still pending, or authorized, rejected or cancelled only after the window closed."""
    decided_late = (
        Q(state=RollbackState.PENDING_AUTHORIZATION)
        | Q(authorized_at__gt=F("window_closes_at"))
        | Q(
            authorized_at__isnull=True,
            state__in=(RollbackState.REJECTED, RollbackState.CANCELLED),
            finished_at__gt=F("window_closes_at"),
        )
    )
    rows = (
        Rollback.objects.filter(
            decided_late,
            window_closes_at__gte=period.since,
            window_closes_at__lt=min(period.until, now),
            window_closes_at__gt=F("created_at"),
        )
        .values_list("trigger")
        .annotate(closed=Count("id"), still_pending=Count("id", filter=Q(state=RollbackState.PENDING_AUTHORIZATION)))
        .order_by("trigger")
    )
    by_trigger = [
        {"trigger": trigger, "count": closed, "still_pending": still_pending} for trigger, closed, still_pending in rows
    ]
    return {
        "count": sum(row["count"] for row in by_trigger),
        "still_pending": sum(row["still_pending"] for row in by_trigger),
        "by_trigger": by_trigger,
    }


def _monday(moment: datetime) -> datetime:
    start = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return start - timedelta(days=start.weekday())


def trend_weeks(period: Period, now: datetime) -> list[datetime]:
    """The Mondays (UTC) of the weeks a trend covers: the period's, up to now, at most MAX_TREND_WEEKS."""
    last = _monday(min(period.until, now) - timedelta(microseconds=1))
    first = max(_monday(period.since), last - timedelta(weeks=MAX_TREND_WEEKS - 1))
    if first > last:
        return []
    return [first + timedelta(weeks=index) for index in range((last - first).days // 7 + 1)]


def _week_key(moment: datetime | None) -> str:
    return "" if moment is None else _monday(moment).date().isoformat()


def weekly_rollbacks_by_trigger(period: Period, weeks: list[datetime]) -> dict[str, Any]:
    """Rollbacks filed per week and trigger, zeros included, so a chart's columns line up."""
    labels = [week.date().isoformat() for week in weeks]
    if not weeks:
        return {"weeks": [], "triggers": []}
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    rows = (
        Rollback.objects.filter(created_at__gte=max(period.since, weeks[0]), created_at__lt=period.until)
        .annotate(week=TruncWeek("created_at", tzinfo=UTC))
        .values_list("trigger", "week")
        .annotate(n=Count("id"))
        .order_by()
    )
    for trigger, week, n in rows:
        counts[trigger][_week_key(week)] = counts[trigger].get(_week_key(week), 0) + n
    return {
        "weeks": labels,
        "triggers": [
            {"trigger": trigger, "counts": [counts[trigger].get(label, 0) for label in labels]}
            for trigger in sorted(counts, key=lambda name: (-sum(counts[name].values()), name))
        ],
    }


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def reviewer_self_flags(period: Period, weeks: list[datetime]) -> list[dict[str, Any]]:
    """Per reviewer (the person who approved actions executed in the period): how many of their approvals they
    later flagged themselves, by requesting a `reviewer_error` rollback of the action; and the same by week of
    approval. Any such request counts, whatever became of it: the flag is the reviewer's own word."""
    self_flagged = Step.objects.filter(
        action=OuterRef("pk"), rollback__trigger=Trigger.REVIEWER_ERROR, rollback__requested_by=OuterRef("approved_by")
    )
    rows = (
        Action.objects.filter(approved_at__gte=period.since, approved_at__lt=period.until)
        .annotate(week=TruncWeek("approved_at", tzinfo=UTC), self_flagged=Exists(self_flagged))
        .values_list("approved_by__username", "week")
        .annotate(approvals=Count("id"), flagged=Count("id", filter=Q(self_flagged=True)))
        .order_by()
    )
    labels = [week.date().isoformat() for week in weeks]
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_week: dict[str, dict[str, list[int]]] = defaultdict(dict)
    for reviewer, week, approvals, flagged in rows:
        totals[reviewer][0] += approvals
        totals[reviewer][1] += flagged
        cell = by_week[reviewer].setdefault(_week_key(week), [0, 0])
        cell[0] += approvals
        cell[1] += flagged
    result: list[dict[str, Any]] = []
    for reviewer, (approvals, flagged) in totals.items():
        weekly = []
        for label in labels:
            week_approvals, week_flagged = by_week[reviewer].get(label, [0, 0])
            weekly.append(
                {
                    "week": label,
                    "approvals": week_approvals,
                    "self_flagged": week_flagged,
                    "share": _share(week_flagged, week_approvals),
                }
            )
        result.append(
            {
                "reviewer": reviewer,
                "approvals": approvals,
                "self_flagged": flagged,
                "share": _share(flagged, approvals),
                "weekly": weekly,
            }
        )
    result.sort(key=lambda row: (-row["share"], -row["approvals"], row["reviewer"]))
    return result


def signer_decisions(period: Period) -> list[dict[str, Any]]:
    """Per signer, the sign-offs they gave in the period and how often they rejected, per trigger too (the
    verifiers are the signers of `reviewer_error`)."""
    rows = (
        SignOff.objects.filter(at__gte=period.since, at__lt=period.until)
        .values_list("signer__username", "rollback__trigger")
        .annotate(decisions=Count("id"), rejections=Count("id", filter=Q(decision=SignoffDecision.REJECT)))
        .order_by()
    )
    by_signer: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for signer, trigger, decisions, rejections in rows:
        by_signer[signer].append(_decision_row({"trigger": trigger}, decisions, rejections))
    result = []
    for signer, triggers in by_signer.items():
        triggers.sort(key=lambda row: row["trigger"])
        decisions = sum(row["decisions"] for row in triggers)
        rejections = sum(row["rejections"] for row in triggers)
        result.append(_decision_row({"signer": signer}, decisions, rejections) | {"by_trigger": triggers})
    result.sort(
        key=lambda row: (not row["possible_rubber_stamp"], row["reject_rate"], -row["decisions"], row["signer"])
    )
    return result


def _decision_row(key: dict[str, Any], decisions: int, rejections: int) -> dict[str, Any]:
    return key | {
        "decisions": decisions,
        "approvals": decisions - rejections,
        "rejections": rejections,
        "reject_rate": _share(rejections, decisions),
        "possible_rubber_stamp": decisions >= RUBBER_STAMP_MIN_DECISIONS and rejections == 0,
    }


def rollback_metrics(period: Period, *, now: datetime | None = None) -> dict[str, Any]:
    """Every figure for one period, as the API returns it."""
    now = now or timezone.now()
    weeks = trend_weeks(period, now)
    return {
        "since": period.since.isoformat(),
        "until": period.until.isoformat(),
        "rollback_rate": rollback_rates(period),
        "time_to_rollback": time_to_rollback(period),
        "reasons_by_trigger": reasons_by_trigger(period),
        "cost": rollback_cost(period),
        "time_to_decision": time_to_decision(period),
        "waiting": waiting(now),
        "windows_closed_while_waiting": windows_closed_while_waiting(period, now),
        "weekly_rollbacks_by_trigger": weekly_rollbacks_by_trigger(period, weeks),
        "reviewer_self_flags": reviewer_self_flags(period, weeks),
        "signer_decisions": signer_decisions(period),
        "rubber_stamp_min_decisions": RUBBER_STAMP_MIN_DECISIONS,
    }
