"""Manual remediation: the work the workers cannot do (steps not reversible, compensations that did not go out)."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from console.access import console_page, may_see_remediation
from rollback_console.errors import DomainError, Invalid
from rollbacks.execution import complete_remediation
from rollbacks.roles import holds_signing_role
from rollbacks.selectors import get_rollback_for, remediation_tasks_for

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
    return render(request, "console/remediation.html", {"page": page, "show": show, "completable": completable})


@require_POST
@console_page(may_see_remediation, reason=REASON)
def remediation_done(request: HttpRequest, task_id: int) -> HttpResponse:
    # As on a rollback's own page: a task of a rollback this person may not see is not found (404), rather than
    # refused with a message that tells an existing task from a missing one.
    rollback_id = remediation_tasks_for(request.user).filter(pk=task_id).values_list("step__rollback_id", flat=True)
    get_rollback_for(request.user, rollback_id.first() or 0)
    note = request.POST.get("note", "").strip()
    try:
        complete_remediation(task_id, actor=request.user, note=note)
    except Invalid as exc:
        messages.error(request, " ".join(str(p) for problems in exc.errors.values() for p in problems))
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Remediation task {task_id} marked done.")
    return redirect("console:remediation")
