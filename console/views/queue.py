"""The queue: the person's inbox (rollbacks.inbox), most urgent first, with counts per kind and trigger."""

from typing import Any, cast

from django import forms
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from console.access import console_page
from rollbacks.inbox import KIND_LABELS, KINDS, Inbox, InboxItem, may_have_inbox
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


@require_GET
@console_page()
def queue(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not may_have_inbox(user):
        # Nothing can ever wait for them (an auditor, a reviewer): the list of what they may see instead.
        return redirect("console:rollbacks")
    kind, trigger = chosen_filters(request)
    inbox = Inbox(user, kind=kind or None, trigger=trigger or None)
    counts = inbox.counts_by_trigger()
    per_kind = inbox.counts()
    request.inbox_counts = per_kind  # type: ignore[attr-defined]  # the header's counts, without asking again
    per_trigger = {name: sum(counts[k].get(name, 0) for k in KINDS if kind in ("", k)) for name in Trigger.values}
    # Inbox is the part of a sequence the paginator uses (count and slices); the stubs ask for a whole Sequence.
    paginator: Paginator[InboxItem] = Paginator(cast(Any, inbox), PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    return render(
        request,
        "console/queue.html",
        {
            "page": page,
            "kind": kind,
            "trigger": trigger,
            "kinds": [(name, KIND_LABELS[name], per_kind[name]) for name in KINDS],
            "triggers": [(name, label, per_trigger[name]) for name, label in Trigger.choices],
            "total": sum(per_kind.values()),
            "trigger_labels": dict(Trigger.choices),
            "kind_labels": KIND_LABELS,
            "mine": requested_by(user, limit=MINE_ROWS),
        },
    )


@require_GET
@console_page()
def inbox_counts_fragment(request: HttpRequest) -> HttpResponse:
    """The header's counts alone, for htmx to poll, so they stay live without a reload."""
    return render(request, "console/_inbox_counts.html")
