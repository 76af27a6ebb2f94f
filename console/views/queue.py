"""The queue: the person's inbox (rollbacks.inbox), most urgent first, with counts per kind and trigger."""

from dataclasses import dataclass

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from console.access import console_page
from rollbacks.inbox import KIND_LABELS, KINDS, CappedCount, Inbox, InboxItem, may_have_inbox
from rollbacks.models import Trigger
from rollbacks.selectors import requested_by

PAGE_SIZE = 25
MINE_ROWS = 5


class InboxFilterForm(forms.Form):
    """The filters the list can hold: the API's `kind` and `trigger`. A value it refuses is ignored here (the
    page stays usable), as the API answers it with 400."""

    kind = forms.ChoiceField(choices=[("", "any"), *KIND_LABELS.items()], required=False)
    trigger = forms.ChoiceField(choices=[("", "any"), *Trigger.choices], required=False)


def chosen_filters(request: HttpRequest) -> tuple[str, str]:
    form = InboxFilterForm(request.GET)
    form.is_valid()
    data = getattr(form, "cleaned_data", {})
    return data.get("kind") or "", data.get("trigger") or ""


@dataclass
class QueuePage:
    """A page of the queue without an exact total past the cap: whether a next page exists is known by reading one
    row more than the page; the number of pages only when the count is exact."""

    object_list: list[InboxItem]
    number: int
    count: CappedCount
    has_next: bool

    @property
    def num_pages(self) -> int | None:
        return max(1, -(-self.count.value // PAGE_SIZE)) if self.count.exact else None

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def previous_page_number(self) -> int:
        return self.number - 1

    @property
    def next_page_number(self) -> int:
        return self.number + 1


def page_of(inbox: Inbox, number_asked: str | None) -> QueuePage:
    """The page asked (the first for a value that is no page number; the last known one past the end), one query
    for its rows whatever its number."""
    try:
        number = max(int(number_asked or 1), 1)
    except ValueError:
        number = 1
    count = inbox.capped_count()
    if count.exact:
        number = min(number, max(1, -(-count.value // PAGE_SIZE)))
    start = (number - 1) * PAGE_SIZE
    rows = inbox[start : start + PAGE_SIZE + 1]
    return QueuePage(rows[:PAGE_SIZE], number, count, len(rows) > PAGE_SIZE)


@require_GET
@console_page()
def queue(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not may_have_inbox(user):
        # Nothing can ever wait for them (an auditor, a reviewer): the list of what they may see instead.
        return redirect("console:rollbacks")
    kind, trigger = chosen_filters(request)
    inbox = Inbox(user, kind=kind or None, trigger=trigger or None)
    # Every count on the page (tabs, filters, header, pagination) is capped (rollbacks.inbox.COUNT_CAP): one query.
    per_kind = inbox.capped_counts()
    request.inbox_counts = per_kind  # type: ignore[attr-defined]  # the header's counts, without asking again
    per_trigger = {name: inbox.capped_count_by_trigger(name, kind) for name in Trigger.values}
    page = page_of(inbox, request.GET.get("page"))
    return render(
        request,
        "console/queue.html",
        {
            "page": page,
            "kind": kind,
            "trigger": trigger,
            "kinds": [(name, KIND_LABELS[name], per_kind[name]) for name in KINDS],
            "triggers": [(name, label, per_trigger[name]) for name, label in Trigger.choices],
            "total": sum(per_kind.values(), CappedCount(0)),
            "kind_labels": KIND_LABELS,
            "mine": requested_by(user, limit=MINE_ROWS),
        },
    )


@require_GET
@console_page()
def inbox_counts_fragment(request: HttpRequest) -> HttpResponse:
    """The header's counts alone, for htmx to poll, so they stay live without a reload."""
    return render(request, "console/_inbox_counts.html")
