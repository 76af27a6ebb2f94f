"""Manual remediation: the work the workers cannot do (steps not reversible, compensations that did not go out)."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from console.access import console_page, may_see_remediation
from console.forms import NoteForm, errors_text
from rollback_console.errors import DomainError, Invalid
from rollbacks.execution import complete_remediation
from rollbacks.models import StepOutcome
from rollbacks.rules import holds_signing_role, may_resolve
from rollbacks.selectors import get_remediation_task_for, remediation_tasks_for

PAGE_SIZE = 25
REASON = "Remediation is for people who sign off rollbacks, and for auditors to read."


@require_GET
@console_page(may_see_remediation, reason=REASON)
def remediation_list(request: HttpRequest) -> HttpResponse:
    show = "done" if request.GET.get("show") == "done" else "open"
    tasks = remediation_tasks_for(request.user, done=show == "done")
    page = Paginator(tasks, PAGE_SIZE).get_page(request.GET.get("page"))
    # The same rule the service applies: a holder of one of the rollback's sign-off roles, not its requester.
    completable = {task.pk for task in page.object_list if holds_signing_role(request.user, task.step.rollback)}
    # rules.may_resolve: closing these tasks resolves their steps too (and resolving a step closes its tasks).
    settles_step = {task.pk for task in page.object_list if may_resolve(task.step.rollback, task.step)}
    return render(
        request,
        "console/remediation.html",
        {"page": page, "show": show, "completable": completable, "settles_step": settles_step},
    )


@require_POST
@console_page(may_see_remediation, reason=REASON)
def remediation_done(request: HttpRequest, task_id: int) -> HttpResponse:
    # As on a rollback's own page: a task of a rollback this person may not see is not found (404), rather than
    # refused with a message that tells an existing task from a missing one.
    get_remediation_task_for(request.user, task_id)
    form = NoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, errors_text(form))
        return redirect("console:remediation")
    try:
        task = complete_remediation(task_id, actor=request.user, note=form.cleaned_data["note"])
    except Invalid as exc:
        messages.error(request, " ".join(str(p) for problems in exc.errors.values() for p in problems))
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        resolved = " Its step was resolved with it." if task.step.outcome == StepOutcome.MANUAL_DONE else ""
        messages.success(request, f"Remediation task {task_id} marked done.{resolved}")
    return redirect("console:remediation")
