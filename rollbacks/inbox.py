"""The inbox: everything that waits for one person now, most urgent first, as one list.

Four kinds of item, each a query built from the rules of `rollbacks/rules.py` (the SQL forms beside the pure
functions the services ask) and from `selectors.queue_for`:
- `signoff`: a request that needs a sign-off in a role the person holds and separation of duties lets them give;
- `confirm_cascade`: a paused rollback they may continue;
- `step`: a step in `failed`, `prerequisites_unmet`, `not_reversible`, `compensation_failed` or `loop_stopped`
  they may retry or resolve, unless an open remediation task covers it (closing the task resolves the step, so
  the same work is listed once, as the task);
- `remediation`: an open remediation task they may close.

The four queries are put together as one UNION ALL, so a page of the inbox is one query, its counts another, and
the summaries of the page's items three more, whatever the number of items.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, overload

from django.db import connection
from django.db.models import BigIntegerField, Exists, F, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Cast, Coalesce

from actions.models import Action
from policies.roles import user_roles
from rollbacks.models import RemediationTask, Rollback, Step
from rollbacks.rules import (
    carry_on_sql,
    confirmable_sql,
    remediation_open_sql,
    signs_under_current_policy,
    step_needs_person_sql,
)
from rollbacks.selectors import queue_for

SIGNOFF, CONFIRM_CASCADE, STEP, REMEDIATION = "signoff", "confirm_cascade", "step", "remediation"
KINDS = (SIGNOFF, CONFIRM_CASCADE, STEP, REMEDIATION)
KIND_LABELS = {
    SIGNOFF: "Sign-off",
    CONFIRM_CASCADE: "Confirm cascade",
    STEP: "Step needs a person",
    REMEDIATION: "Remediation",
}
# The columns every kind's query selects, in this order, so that they can be put one after the other.
COLUMNS = ("i_kind", "i_rollback", "i_step", "i_task", "i_trigger", "i_since", "i_window")
# Most urgent first: the earliest reversal window closing (none last), then the oldest; the rest breaks ties.
ORDER = (F("i_window").asc(nulls_last=True), "i_since", "i_kind", "i_rollback", "i_step", "i_task")
# The pages' counts (the header, the tabs, the filters, the queue's pagination) count each kind up to this many
# items and say "1,000+" beyond it, the way mail clients say "99+": counting 100,000 waiting requests exactly
# would cost every page more than the rest of it. The API's count stays exact (`Inbox.count`).
COUNT_CAP = 1000


@dataclass(frozen=True)
class CappedCount:
    """A count the pages show: `value` items at least, exactly that many unless `more` (some kind counted had
    more than the cap). Shown as the number, or "1,000+" (the lower bound, at most the cap, and a plus)."""

    value: int
    more: bool = False
    cap: int = COUNT_CAP

    @property
    def exact(self) -> bool:
        return not self.more

    def __bool__(self) -> bool:
        return self.value > 0 or self.more

    def __str__(self) -> str:
        return f"{min(self.value, self.cap):,}+" if self.more else str(self.value)

    def __add__(self, other: "CappedCount") -> "CappedCount":
        return CappedCount(self.value + other.value, self.more or other.more, min(self.cap, other.cap))


@dataclass
class InboxItem:
    """One thing waiting for the person. `task` is the remediation task (null for other kinds); `what` is the
    structured form of `summary` (action_type, subject, amount, currency, actions) for a page to lay out."""

    kind: str
    rollback: int
    step: int | None
    task: int | None
    trigger: str
    since: datetime
    window_closes_at: datetime | None
    summary: str = ""
    what: dict[str, Any] = field(default_factory=dict)
    detail: str = ""  # the step's outcome, the remediation's reason, the paused depth
    state: str = ""  # the rollback's
    reason: str = ""  # the rollback's
    requested_by: str = ""


def may_have_inbox(user: Any) -> bool:
    """Only holders of a role that signs some rollback under the current policy ever have anything in the inbox
    (every kind needs a sign-off role of the rollback); others have no queue to land on."""
    return signs_under_current_policy(user)


def _null() -> Cast:
    # Typed, or PostgreSQL takes a NULL in the first query of a UNION for text.
    return Cast(Value(None), output_field=BigIntegerField())


def _arms(user: Any) -> dict[str, QuerySet[Any]]:
    """Each kind's query, its columns named as COLUMNS; none for a person without a role."""
    if not user_roles(user):
        return {}
    signoff = (
        queue_for(user)
        .order_by()
        .annotate(
            i_kind=Value(SIGNOFF),
            i_rollback=F("id"),
            i_step=_null(),
            i_task=_null(),
            i_trigger=F("trigger"),
            i_since=F("created_at"),
            i_window=F("window_closes_at"),
        )
    )
    # A paused rollback is updated last when it paused: nothing writes it until someone confirms.
    confirm = Rollback.objects.filter(confirmable_sql(), carry_on_sql(user)).annotate(
        i_kind=Value(CONFIRM_CASCADE),
        i_rollback=F("id"),
        i_step=_null(),
        i_task=_null(),
        i_trigger=F("trigger"),
        i_since=F("updated_at"),
        i_window=F("window_closes_at"),
    )
    open_task = RemediationTask.objects.filter(remediation_open_sql(), step=OuterRef("pk"))
    step = (
        Step.objects.filter(step_needs_person_sql(), carry_on_sql(user, "rollback__"))
        .exclude(Exists(open_task))
        .annotate(
            i_kind=Value(STEP),
            i_rollback=F("rollback_id"),
            i_step=F("id"),
            i_task=_null(),
            i_trigger=F("rollback__trigger"),
            i_since=Coalesce("finished_at", "started_at", "rollback__created_at"),
            i_window=F("action__window_ends_at"),
        )
    )
    remediation = RemediationTask.objects.filter(
        remediation_open_sql(), carry_on_sql(user, "step__rollback__")
    ).annotate(
        i_kind=Value(REMEDIATION),
        i_rollback=F("step__rollback_id"),
        i_step=F("step_id"),
        i_task=F("id"),
        i_trigger=F("step__rollback__trigger"),
        i_since=F("created_at"),
        i_window=F("step__action__window_ends_at"),
    )
    arms: dict[str, QuerySet[Any]] = {
        SIGNOFF: signoff,
        CONFIRM_CASCADE: confirm,
        STEP: step,
        REMEDIATION: remediation,
    }
    return {kind: query.order_by().values(*COLUMNS) for kind, query in arms.items()}


def _union(arms: dict[str, QuerySet[Any]]) -> QuerySet[Any] | None:
    queries = list(arms.values())
    if not queries:
        return None
    first, *rest = queries
    return first.union(*rest, all=True) if rest else first


def inbox_counts(user: Any) -> dict[str, int]:
    """How many items of each kind wait for the person, every kind named (0 when none); one query."""
    return Inbox(user).counts()


def capped_inbox_counts(user: Any) -> dict[str, CappedCount]:
    """As `inbox_counts`, each kind counted up to `COUNT_CAP` (what the header shows); one query."""
    return Inbox(user).capped_counts()


class Inbox:
    """The person's items (of one kind, of one trigger, when asked), most urgent first: what a paginator (Django's
    or DRF's) reads, a slice at a time, each slice one query plus the summaries' three. The kinds' queries are
    built once, for the counts of the whole inbox and for the filtered list alike."""

    def __init__(self, user: Any, *, kind: str | None = None, trigger: str | None = None):
        self._all = _arms(user)
        arms = {name: arm for name, arm in self._all.items() if kind in (None, name)}
        if trigger:
            arms = {name: arm.filter(i_trigger=trigger) for name, arm in arms.items()}
        self._arms = arms
        self._kind, self._trigger = kind, trigger
        self._counts: dict[str, dict[str, int]] | None = None
        self._capped: tuple[int, dict[str, dict[str, int]]] | None = None

    def counts_by_trigger(self) -> dict[str, dict[str, int]]:
        """kind -> trigger -> items over the whole inbox (whatever the filters), in one query: what the tabs and
        the navigation show; the filtered list's count is read from it, so the paginator asks nothing more."""
        if self._counts is not None:
            return self._counts
        counts: dict[str, dict[str, int]] = {name: {} for name in KINDS}
        # Only the two columns counted: the database then computes no window or waiting time for the count.
        union = _union({name: arm.values("i_kind", "i_trigger") for name, arm in self._all.items()})
        if union is not None:
            sql, params = union.query.sql_with_params()
            with connection.cursor() as cursor:
                cursor.execute(
                    # The inner SQL is the ORM's, its values parameters.
                    f"SELECT i_kind, i_trigger, COUNT(*) FROM ({sql}) AS inbox GROUP BY i_kind, i_trigger",
                    params,
                )
                for name, trigger, n in cursor.fetchall():
                    counts[name][trigger] = n
        self._counts = counts
        return counts

    def _capped_by_trigger(self) -> tuple[int, dict[str, dict[str, int]]]:
        """The cap, and kind -> trigger -> items among the first cap + 1 of each kind (in no order), in one query:
        each kind's query stops at cap + 1 rows, so the count costs the same at 1,000 items or 100,000."""
        if self._capped is not None:
            return self._capped
        cap = COUNT_CAP
        counts: dict[str, dict[str, int]] = {name: {} for name in KINDS}
        parts: list[str] = []
        params: list[Any] = []
        for number, arm in enumerate(self._all.values()):
            sql, arm_params = arm.values("i_kind", "i_trigger")[: cap + 1].query.sql_with_params()
            # A subquery in FROM may hold its own LIMIT on every database (a UNION's arm may not on SQLite).
            parts.append(f"SELECT i_kind, i_trigger FROM ({sql}) AS arm{number}")
            params.extend(arm_params)
        if parts:
            with connection.cursor() as cursor:
                cursor.execute(
                    # The inner SQL is the ORM's, its values parameters.
                    f"SELECT i_kind, i_trigger, COUNT(*) FROM ({' UNION ALL '.join(parts)}) AS inbox "
                    "GROUP BY i_kind, i_trigger",
                    params,
                )
                for name, trigger, n in cursor.fetchall():
                    counts[name][trigger] = n
        self._capped = (cap, counts)
        return self._capped

    def capped_counts(self) -> dict[str, CappedCount]:
        """Items per kind over the whole inbox, every kind named, each counted up to the cap."""
        cap, counts = self._capped_by_trigger()
        result = {}
        for name in KINDS:
            n = sum(counts[name].values())
            result[name] = CappedCount(min(n, cap), n > cap, cap)
        return result

    def capped_count_by_trigger(self, trigger: str, kind: str | None = None) -> CappedCount:
        """Items of one trigger (of one kind, or of every kind) over the whole inbox, whatever the filters: exact
        unless a kind counted reached the cap, a lower bound then."""
        cap, counts = self._capped_by_trigger()
        total = CappedCount(0, False, cap)
        for name in KINDS:
            if kind in (None, "", name):
                total += CappedCount(counts[name].get(trigger, 0), sum(counts[name].values()) > cap, cap)
        return total

    def capped_count(self) -> CappedCount:
        """The filtered list's length, exact unless a kind it holds reached the cap."""
        cap, counts = self._capped_by_trigger()
        total = CappedCount(0, False, cap)
        for name in KINDS:
            if self._kind not in (None, name):
                continue
            if self._trigger:
                total += self.capped_count_by_trigger(self._trigger, name)
            else:
                n = sum(counts[name].values())
                total += CappedCount(min(n, cap), n > cap, cap)
        return total

    def counts(self) -> dict[str, int]:
        """Items per kind over the whole inbox, every kind named."""
        return {name: sum(per_trigger.values()) for name, per_trigger in self.counts_by_trigger().items()}

    def count(self) -> int:
        """The filtered list's length."""
        return sum(
            n
            for name, per_trigger in self.counts_by_trigger().items()
            if self._kind in (None, name)
            for trigger, n in per_trigger.items()
            if self._trigger in (None, "", trigger)
        )

    def __len__(self) -> int:
        return self.count()

    @overload
    def __getitem__(self, index: int) -> InboxItem: ...
    @overload
    def __getitem__(self, index: slice) -> list[InboxItem]: ...
    def __getitem__(self, index: int | slice) -> InboxItem | list[InboxItem]:
        if isinstance(index, int):
            return self[index : index + 1][0]
        union = _union(self._arms)
        if union is None or (index.stop is not None and index.stop <= (index.start or 0)):
            return []  # (an empty slice would also empty the first query of the UNION below, and Django drop it)
        compound = len(self._arms) > 1 and connection.features.supports_slicing_ordering_in_compound
        if index.stop is not None and compound:
            # Each kind's query stops at the page's end in its own order, so the database walks the window index
            # for the first rows instead of sorting every waiting request (SQLite cannot limit inside a UNION).
            union = _union({name: arm.order_by(*ORDER)[: index.stop] for name, arm in self._arms.items()})
            assert union is not None
        rows = union.order_by(*ORDER)[index]
        return describe([_item(row) for row in rows])

    def __iter__(self) -> Iterator[InboxItem]:
        return iter(self[0 : self.count()])


def inbox_for(user: Any, kind: str | None = None, *, trigger: str | None = None) -> Inbox:
    """The person's inbox, most urgent first; slice it (`inbox_for(user)[:25]`) to read items with summaries."""
    return Inbox(user, kind=kind, trigger=trigger)


def _item(row: dict[str, Any]) -> InboxItem:
    return InboxItem(
        kind=row["i_kind"],
        rollback=row["i_rollback"],
        step=row["i_step"],
        task=row["i_task"],
        trigger=row["i_trigger"],
        since=row["i_since"],
        window_closes_at=row["i_window"],
    )


def describe(items: list[InboxItem]) -> list[InboxItem]:
    """Fill in each item's summary: what is being reversed. Three queries for any number of items: the
    rollbacks (with the first target's id), the steps with their actions, the first targets."""
    if not items:
        return items
    first_target = Step.objects.filter(rollback=OuterRef("pk"), depth=0, is_loop=False).order_by("id").values("action")
    rollbacks = {
        rollback.pk: rollback
        for rollback in Rollback.objects.filter(pk__in={item.rollback for item in items})
        .annotate(first_action=Subquery(first_target[:1]))
        .select_related("requested_by")
        .only("id", "plan", "confirmed_depth", "state", "reason", "requested_by__username")
    }
    steps = {
        step.pk: step
        for step in Step.objects.filter(pk__in={item.step for item in items if item.step is not None}).select_related(
            "action"
        )
    }
    task_ids = {item.task for item in items if item.task is not None}
    tasks = dict(RemediationTask.objects.filter(pk__in=task_ids).values_list("pk", "reason")) if task_ids else {}
    first_ids: set[int] = {
        first for rollback in rollbacks.values() if (first := getattr(rollback, "first_action", None)) is not None
    }
    actions = {action.pk: action for action in Action.objects.filter(pk__in=first_ids)}
    for item in items:
        rollback = rollbacks[item.rollback]
        item.state, item.reason = rollback.state, rollback.reason
        item.requested_by = rollback.requested_by.get_username()
        if item.step is not None:
            step = steps[item.step]
            item.what = _what(step.action, 1)
            if item.kind == REMEDIATION:
                item.detail = tasks.get(item.task or 0, "")
                item.summary = f"Remediation ({item.detail.replace('_', ' ')}): {_text(item.what)}"
            else:
                item.detail = step.outcome
                item.summary = f"Step {step.outcome.replace('_', ' ')}: {_text(item.what)}"
            continue
        action = actions.get(getattr(rollback, "first_action", None) or 0)
        count = int((rollback.plan or {}).get("actions") or 1)
        item.what = _what(action, count)
        if item.kind == CONFIRM_CASCADE:
            item.detail = f"paused at depth {rollback.confirmed_depth}"
            item.summary = f"Confirm the cascade beyond depth {rollback.confirmed_depth}: {_text(item.what)}"
        else:
            item.summary = f"Sign off reversing {_text(item.what)}"
    return items


def _what(action: Action | None, count: int) -> dict[str, Any]:
    if action is None:
        return {"actions": count}
    currency = action.payload.get("currency") if isinstance(action.payload, dict) else None
    return {
        "action_type": action.action_type,
        "subject": action.subject,
        "amount": _money(action.amount),
        "currency": currency if isinstance(currency, str) else None,
        "actions": count,
    }


def _money(amount: Decimal | None) -> str | None:
    """At least two decimals, no trailing zeros beyond them (25.0000 -> 25.00, 1.2345 -> 1.2345)."""
    if amount is None:
        return None
    text = f"{amount.normalize():f}"
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def _text(what: dict[str, Any]) -> str:
    """'refund.issue on customer:1001 (25.00 EUR)', with 'and 11 more actions' for a bulk request."""
    if "action_type" not in what:
        return f"{what['actions']} actions"
    text = f"{what['action_type']} on {what['subject']}"
    if what["amount"] is not None:
        text += f" ({what['amount']}{' ' + what['currency'] if what['currency'] else ''})"
    if what["actions"] > 1:
        more = what["actions"] - 1
        text += f" and {more} more action{'s' if more > 1 else ''}"
    return text
