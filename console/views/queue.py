"""The queue: rollbacks waiting for a role the signer holds, newest or most urgent first."""

from datetime import timedelta
from typing import Any, cast

from django.core.paginator import Paginator
from django.db.models import Count, F, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from console.access import console_page
from rollbacks.models import Rollback, RollbackState, Trigger
from rollbacks.selectors import queue_for, rollbacks_visible_to, with_approval_counts

PAGE_SIZE = 25
# age choice -> (label, lookup on created_at, how long ago)
AGES = {
    "1h": ("newer than an hour", "gte", timedelta(hours=1)),
    "24h": ("newer than a day", "gte", timedelta(days=1)),
    "old": ("older than a day", "lt", timedelta(days=1)),
    "week": ("older than a week", "lt", timedelta(days=7)),
}
SORTS = {"newest": "newest first", "urgent": "window closing first"}


def _age_filter(age: str) -> Q:
    _, lookup, span = AGES[age]
    return Q(**{f"created_at__{lookup}": timezone.now() - span})


class CountedRows:
    """The page's rows with their number already known, so the paginator does not count them again."""

    def __init__(self, rows: QuerySet[Rollback], count: int):
        self.rows, self.total = rows, count

    def count(self) -> int:
        return self.total

    def __len__(self) -> int:
        return self.total

    def __getitem__(self, index: slice) -> list[Rollback]:
        return list(self.rows[index])


@require_GET
@console_page()
def queue(request: HttpRequest) -> HttpResponse:
    user = request.user
    waiting = queue_for(user)
    trigger = request.GET.get("trigger", "")
    state = request.GET.get("state", "")
    age = request.GET.get("age", "")
    sort = request.GET.get("sort", "newest")
    chosen = Q()
    if trigger in Trigger.values:
        chosen &= Q(trigger=trigger)
    if state in RollbackState.values:
        chosen &= Q(state=state)
    if age in AGES:
        chosen &= _age_filter(age)
    # One pass gives the tabs' counts and the number of rows the filters keep (the paginator's count).
    per_trigger = waiting.order_by().values_list("trigger").annotate(n=Count("id"), kept=Count("id", filter=chosen))
    counts = {name: n for name, n, _ in per_trigger}
    kept = sum(row[2] for row in per_trigger)
    rows = with_approval_counts(waiting.filter(chosen))
    if sort == "urgent":
        rows = rows.order_by(F("window_closes_at").asc(nulls_last=True), "-created_at", "-id")
    else:
        sort = "newest"
        rows = rows.order_by("-created_at", "-id")
    # CountedRows is the part of a sequence the paginator uses; the stubs ask for a whole Sequence.
    paginator: Paginator[Rollback] = Paginator(cast(Any, CountedRows(rows, kept)), PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    mine = list(
        rollbacks_visible_to(user)
        .filter(requested_by_id=user.pk)
        .select_related("requested_by")
        .order_by("-created_at")[:5]
    )
    return render(
        request,
        "console/queue.html",
        {
            "page": page,
            "counts": [(name, label, counts.get(name, 0)) for name, label in Trigger.choices],
            "total": sum(counts.values()),
            "trigger": trigger,
            "state": state,
            "age": age,
            "sort": sort,
            "ages": [(key, label) for key, (label, _, _) in AGES.items()],
            "sorts": SORTS.items(),
            "states": RollbackState.values,
            "mine": mine,
        },
    )
