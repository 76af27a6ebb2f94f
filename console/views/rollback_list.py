"""Rollbacks: every rollback the person may see, searchable and filtered by state and trigger."""

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from console.access import console_page
from console.forms import MAX_SEARCH_LENGTH
from rollbacks.models import RollbackState, Trigger
from rollbacks.selectors import RollbackFilter, rollbacks_found_for

PAGE_SIZE = 25


@require_GET
@console_page()
def rollback_list(request: HttpRequest) -> HttpResponse:
    # The API's filters, parsed by the same class; a value it would refuse is ignored here, and said so.
    filters = RollbackFilter(request.GET)
    ignored = [] if filters.is_valid() else sorted(filters.errors)
    if ignored:
        filters = RollbackFilter({k: v for k, v in request.GET.items() if k not in ignored})
        filters.is_valid()
    search = request.GET.get("q", "")[:MAX_SEARCH_LENGTH]
    rollbacks = rollbacks_found_for(request.user, filters, search)
    page = Paginator(rollbacks, PAGE_SIZE).get_page(request.GET.get("page"))
    chosen = filters.form.cleaned_data
    return render(
        request,
        "console/rollbacks.html",
        {
            "page": page,
            "q": search,
            "state": chosen.get("state") or "",
            "trigger": chosen.get("trigger") or "",
            "states": RollbackState.choices,
            "triggers": Trigger.choices,
            "ignored": ignored,
        },
    )
