"""The queue: rollbacks waiting for a role the signer holds, newest or most urgent first."""

from datetime import timedelta
from typing import Any, cast

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from console.access import console_page
from rollbacks.models import Rollback, RollbackState, Trigger
from rollbacks.selectors import RollbackFilter, queue_view, requested_by

PAGE_SIZE = 25
MINE_ROWS = 5
# age choice -> (label, newer (True) or older than, how long ago)
AGES = {
    "1h": ("newer than an hour", True, timedelta(hours=1)),
    "24h": ("newer than a day", True, timedelta(days=1)),
    "old": ("older than a day", False, timedelta(days=1)),
    "week": ("older than a week", False, timedelta(days=7)),
}
SORTS = {"newest": "newest first", "urgent": "window closing first"}


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
    # The API's filters, parsed by the same class; a value it would refuse is ignored here (the tabs stay usable).
    filters = RollbackFilter(request.GET)
    filters.is_valid()
    trigger = filters.form.cleaned_data.get("trigger") or ""
    state = filters.form.cleaned_data.get("state") or ""
    age = request.GET.get("age", "")
    sort = request.GET.get("sort", "newest")
    if sort != "urgent":
        sort = "newest"
    after = before = None
    if age in AGES:
        _, newer, span = AGES[age]
        after, before = (timezone.now() - span, None) if newer else (None, timezone.now() - span)
    queue = queue_view(
        user,
        trigger=trigger or None,
        state=state or None,
        created_after=after,
        created_before=before,
        urgent=sort == "urgent",
    )
    counts = queue.counts
    # CountedRows is the part of a sequence the paginator uses; the stubs ask for a whole Sequence.
    paginator: Paginator[Rollback] = Paginator(cast(Any, CountedRows(queue.rows, queue.kept)), PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    mine = requested_by(user, limit=MINE_ROWS)
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
