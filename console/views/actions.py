"""Action pages: search, an action's chain (approval, rollbacks, upstream and downstream), filing a rollback of
it, and the bulk page that files one for every action a selector matches."""

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from actions.models import Action, ActionState
from actions.selectors import get_action_for, links_of, preview_reversal, search_actions
from audit.selectors import latest_audit_events
from console.access import console_page, may_file, requestable_triggers
from console.forms import ActionSearchForm, RollbackRequestForm, SelectorForm, errors_text
from rollback_console.errors import DomainError, Invalid
from rollbacks.selectors import rollbacks_of_action, trail_scope_for, visible_rollback_ids
from rollbacks.services import plan_rollback, request_rollback

PAGE_SIZE = 25
AUDIT_ROWS = 200


@require_GET
@console_page()
def action_search(request: HttpRequest) -> HttpResponse:
    search = ActionSearchForm(request.GET)
    query = state = ""
    actions: QuerySet[Action] | list[Action] = []  # a search the form refuses finds nothing
    if search.is_valid():
        query, state = search.cleaned_data["q"], search.cleaned_data["state"]
        actions = search_actions(request.user, starting_with=query, state=state)
    page = Paginator(actions, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "console/actions.html",
        {"page": page, "q": query, "state": state, "states": ActionState.values, "search_errors": errors_text(search)},
        status=200 if search.is_valid() else 400,
    )


def _action_context(
    request: HttpRequest, action_id: int, form: RollbackRequestForm | None, plan: Any = None
) -> dict[str, Any]:
    user = request.user
    action = get_action_for(user, action_id, details=True)
    triggers = requestable_triggers(user)
    if form is None and triggers:
        form = RollbackRequestForm(triggers=triggers, initial={"trigger": triggers[0]})
    upstream, downstream = links_of(action)
    rollbacks = rollbacks_of_action(action.pk)
    events = latest_audit_events(action_id=action.pk, scope=trail_scope_for(user), limit=AUDIT_ROWS)
    return {
        "action": action,
        "preview": preview_reversal(user, action),
        "rollbacks": rollbacks,
        # Whoever sees an action sees that it was rolled back, not every rollback of it: link only those they may
        # open, so no link leads to a "Not found".
        "openable": visible_rollback_ids(user, [r["id"] for r in rollbacks] + [e.rollback_id for e in events]),
        "upstream": upstream,
        "downstream": downstream,
        "events": events,
        "form": form,
        "plan": plan,
    }


@require_http_methods(["GET", "POST"])
@console_page()
def action_page(request: HttpRequest, action_id: int) -> HttpResponse:
    """GET shows the action; POST with intent=preview shows the plan (nothing is written); intent=submit files."""
    if request.method == "GET":
        return render(request, "console/action.html", _action_context(request, action_id, None))
    action = get_action_for(request.user, action_id)
    triggers = requestable_triggers(request.user)
    if not triggers:
        messages.error(request, "Your roles do not file rollbacks under the current policy.")
        return redirect("console:action", action_id=action.pk)
    form = RollbackRequestForm(request.POST, triggers=triggers)
    plan = None
    if form.is_valid():
        arguments = {"requester": request.user, "actions": [action.pk], **form.request_kwargs()}
        try:
            if request.POST.get("intent") == "submit":
                rollback = request_rollback(**arguments)
                messages.success(request, f"Rollback #{rollback.pk} requested; it now waits for its sign-offs.")
                return redirect("console:rollback", rollback_id=rollback.pk)
            plan = plan_rollback(**arguments)
        except Invalid as exc:
            form.add_service_errors(exc)
        except DomainError as exc:
            form.add_error(None, exc.message)
    status = 200 if form.is_valid() else 400
    return render(request, "console/action.html", _action_context(request, action.pk, form, plan), status=status)


@require_http_methods(["GET", "POST"])
@console_page(may_file, reason="Your roles do not file rollbacks under the current policy.")
def bulk_rollback(request: HttpRequest) -> HttpResponse:
    """Build a selector, see its plan (counts, irreversible, past the window), then file it."""
    triggers = requestable_triggers(request.user)
    plan = None
    if request.method == "POST":
        form = SelectorForm(request.POST, triggers=triggers)
        if form.is_valid():
            arguments = {"requester": request.user, "selector": form.selector(), **form.request_kwargs()}
            try:
                if request.POST.get("intent") == "submit":
                    rollback = request_rollback(**arguments)
                    messages.success(
                        request, f"Rollback #{rollback.pk} requested for {rollback.plan.get('actions')} actions."
                    )
                    return redirect("console:rollback", rollback_id=rollback.pk)
                plan = plan_rollback(**arguments)
            except Invalid as exc:
                form.add_service_errors(exc)
            except DomainError as exc:
                form.add_error(None, exc.message)
        status = 200 if form.is_valid() else 400
    else:
        form = SelectorForm(triggers=triggers, initial={"trigger": triggers[0]})
        status = 200
    return render(request, "console/bulk.html", {"form": form, "plan": plan}, status=status)
