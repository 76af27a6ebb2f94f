"""A rollback request's page, its progress fragment, and the buttons on it (each calls the API's service)."""

from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit.selectors import trail_page
from audit.verification import standing_of
from console.access import console_page
from console.drawing import GraphNode, cascade_levels, cascade_svg, fits
from console.forms import CancelForm, NoteForm, SignOffForm, TrailPageForm, errors_text
from rollback_console.errors import DomainError, Invalid
from rollbacks.circuits import circuits_holding
from rollbacks.execution import confirm_cascade, resolve_step, retry_step
from rollbacks.models import Rollback, SignoffDecision, Step, StepOutcome
from rollbacks.rules import (
    RESOLVABLE_OUTCOMES,
    RETRYABLE_OUTCOMES,
    RUNNING_STATES,
    STARTED_STATES,
    Refusal,
    approved_its_error,
    cancel_refusal,
    carry_on_refusal,
    confirm_refusal,
    signing_role,
)
from rollbacks.selectors import (
    StepFilter,
    communications_of,
    get_rollback_for,
    pending_action_types,
    progress_of,
    remediation_of,
    rollback_steps,
    signoffs_of,
    steps_of,
    target_facts,
    targets_of,
    trail_scope_for,
)
from rollbacks.services import cancel_rollback, sign_off

# The trail on the page, a page at a time from the newest; the whole of it is in the API and the export.
AUDIT_ROWS = 20
TARGET_ROWS = 50
STEP_ROWS = 100  # steps per page of the steps block
GRAPH_STEPS = 300  # the cascade is drawn for a rollback of up to this many steps; a larger one is a table only


@dataclass(frozen=True)
class Requirement:
    role: str
    count: int
    given: int

    @property
    def missing(self) -> int:
        return max(0, self.count - self.given)


def _requirements(rollback: Rollback, signoffs: list[Any]) -> list[Requirement]:
    given = Counter(signoff.role for signoff in signoffs if signoff.decision == SignoffDecision.APPROVE)
    return [
        Requirement(role=req["role"], count=req["count"], given=given.get(req["role"], 0))
        for req in rollback.required_signoffs
    ]


def _graph(rollback: Rollback, steps: list[Step]) -> dict[str, Any]:
    """The drawing, its levels as text, and whether it fits the page (if not, the page says it scrolls)."""
    nodes = [
        GraphNode(
            key=step.pk,
            parent=step.via_id,
            depth=step.depth,
            title=step.action.action_type,
            subtitle=step.action.external_id,
            outcome=step.outcome,
            href=reverse("console:action", args=[step.action_id]),
            dashed=step.is_loop,
        )
        for step in steps
    ]
    levels = cascade_levels(nodes)
    return {
        "graph": cascade_svg(nodes, authorized_depth=rollback.confirmed_depth),
        "graph_levels": levels,
        "graph_fits": fits(levels),
    }


def _step_filters(request: HttpRequest) -> tuple[StepFilter | None, str]:
    """The steps block's filters from the query string, or none and why (a bad value shows every step)."""
    filters = StepFilter(request.GET)
    if filters.is_valid():
        return filters, ""
    return None, errors_text(filters.form)


def _trail(request: HttpRequest, rollback: Rollback) -> dict[str, Any]:
    """The trail block: a page of events from `?before=`, whether each verifies, and the form's error if any."""
    form = TrailPageForm(request.GET)
    before = form.cleaned_data["before"] if form.is_valid() else None
    page = trail_page(rollback_id=rollback.pk, scope=trail_scope_for(request.user), before=before, size=AUDIT_ROWS)
    return {
        "trail": page,
        "events": page.events,
        "standing": standing_of(page.events),
        "trail_error": "" if form.is_valid() else errors_text(form),
    }


@require_GET
@console_page()
def rollback_page(request: HttpRequest, rollback_id: int) -> HttpResponse:
    user = request.user
    rollback = get_rollback_for(user, rollback_id, details=False)
    progress = progress_of(rollback)
    trail = _trail(request, rollback)
    signoffs = signoffs_of(rollback)
    communications = communications_of(rollback)
    remediation = remediation_of(rollback)
    targets = targets_of(rollback, limit=TARGET_ROWS)
    requirements = _requirements(rollback, signoffs)
    # The rules the services apply, asked with the facts this page loaded (the services ask again under the lock).
    approved_error = approved_its_error(user, rollback)
    sign = signing_role(
        user,
        rollback,
        signed=any(signoff.signer_id == user.pk for signoff in signoffs),
        approvals={req.role: req.given for req in requirements},
        approved_error=approved_error,
    )
    carry_on = carry_on_refusal(user, rollback, approved_error=approved_error) is None
    window_closes, prerequisites, side_effects = target_facts(rollback)
    # The steps a page at a time (an incident has 100,000); the drawing only while it stays readable.
    filters, filter_error = _step_filters(request)
    steps = Paginator(rollback_steps(rollback, filters), STEP_ROWS).get_page(request.GET.get("steps_page"))
    chosen = filters.form.cleaned_data if filters is not None else {}
    return render(
        request,
        "console/rollback.html",
        {
            "rollback": rollback,
            "steps": steps,
            "step_outcomes": StepOutcome.values,
            "chosen_outcomes": chosen.get("outcome") or [],
            "chosen_depth": chosen.get("depth"),
            "filter_error": filter_error,
            "targets": targets,
            "more_targets": max(0, int(rollback.plan.get("actions", 0)) - len(targets)),
            "signoffs": signoffs,
            "requirements": requirements,
            "may_sign": not isinstance(sign, Refusal),
            # Only a refusal about the person is worth a line; the page shows the state already.
            "sign_refusal": sign.message if isinstance(sign, Refusal) and sign.about == "person" else "",
            "may_confirm": carry_on and confirm_refusal(rollback) is None,
            "may_cancel": cancel_refusal(user, rollback) is None,
            "may_handle_steps": carry_on and rollback.state in STARTED_STATES,
            "retryable": RETRYABLE_OUTCOMES,
            "needs_person": RESOLVABLE_OUTCOMES,
            "running": rollback.state in RUNNING_STATES,
            "progress": progress,
            **(_graph(rollback, steps_of(rollback)) if progress.total <= GRAPH_STEPS else {"graph": None}),
            "graph_steps": GRAPH_STEPS,
            "communications": communications,
            "remediation": remediation,
            # Each step's remediation task, so the step's row names it (rules.may_resolve: one settles the other).
            "task_of_step": {task.step_id: task for task in remediation},
            **trail,
            "prerequisites": prerequisites,
            "side_effects": side_effects,
            "window_closes": window_closes,
            # Integrators whose circuit is open hold their steps pending: the step list says so.
            "held_by_circuits": circuits_holding(rollback.policy_version_id, pending_action_types(rollback))
            if rollback.state in RUNNING_STATES
            else {},
        },
        status=400 if trail["trail_error"] else 200,
    )


@require_GET
@console_page()
def rollback_progress(request: HttpRequest, rollback_id: int) -> HttpResponse:
    """The progress bar alone, polled while the rollback runs. When the state has moved on from the one the page
    was drawn in, ask htmx to reload the page so outcomes and buttons are current."""
    rollback = get_rollback_for(request.user, rollback_id, details=False)
    response = render(
        request,
        "console/_progress.html",
        {
            "rollback": rollback,
            "progress": progress_of(rollback),
            "running": rollback.state in RUNNING_STATES,
        },
    )
    if request.GET.get("seen") and request.GET["seen"] != rollback.state:
        response["HX-Refresh"] = "true"
    return response


def _after(request: HttpRequest, rollback_id: int, call: Any, success: str) -> HttpResponse:
    try:
        call()
    except Invalid as exc:
        messages.error(request, " ".join(f"{problem}" for problems in exc.errors.values() for problem in problems))
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, success)
    return redirect("console:rollback", rollback_id=rollback_id)


@require_POST
@console_page()
def rollback_sign_off(request: HttpRequest, rollback_id: int) -> HttpResponse:
    rollback = get_rollback_for(request.user, rollback_id)
    form = SignOffForm(request.POST)
    if not form.is_valid():
        messages.error(request, errors_text(form))
        return redirect("console:rollback", rollback_id=rollback.pk)
    decision, comment = form.cleaned_data["decision"], form.cleaned_data["comment"]
    done = "You approved this rollback." if decision == SignoffDecision.APPROVE else "You rejected this rollback."
    return _after(
        request,
        rollback.pk,
        lambda: sign_off(rollback.pk, signer=request.user, decision=decision, comment=comment),
        done,
    )


@require_POST
@console_page()
def rollback_confirm_cascade(request: HttpRequest, rollback_id: int) -> HttpResponse:
    rollback = get_rollback_for(request.user, rollback_id)
    return _after(
        request,
        rollback.pk,
        lambda: confirm_cascade(rollback.pk, actor=request.user),
        "Cascade confirmed one level further; execution continues.",
    )


@require_http_methods(["GET", "POST"])
@console_page()
def rollback_cancel(request: HttpRequest, rollback_id: int) -> HttpResponse:
    """GET asks "are you sure?" on a page of its own (no script needed); only a POST carrying that page's
    `confirm=yes` cancels. A POST without it (an old form, a stray click) shows the question again."""
    rollback = get_rollback_for(request.user, rollback_id)
    if request.method == "POST" and CancelForm(request.POST).is_valid():
        return _after(
            request, rollback.pk, lambda: cancel_rollback(rollback.pk, actor=request.user), "Rollback cancelled."
        )
    refusal = cancel_refusal(request.user, rollback)
    if refusal is not None:
        messages.error(request, refusal.message)
        return redirect("console:rollback", rollback_id=rollback.pk)
    return render(request, "console/cancel.html", {"rollback": rollback})


@require_POST
@console_page()
def rollback_retry_step(request: HttpRequest, rollback_id: int, step_id: int) -> HttpResponse:
    rollback = get_rollback_for(request.user, rollback_id)
    return _after(
        request,
        rollback.pk,
        lambda: retry_step(rollback.pk, step_id, actor=request.user),
        f"Step {step_id} queued to run again.",
    )


@require_POST
@console_page()
def rollback_resolve_step(request: HttpRequest, rollback_id: int, step_id: int) -> HttpResponse:
    rollback = get_rollback_for(request.user, rollback_id)
    form = NoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, errors_text(form))
        return redirect("console:rollback", rollback_id=rollback.pk)
    note = form.cleaned_data["note"]
    return _after(
        request,
        rollback.pk,
        lambda: resolve_step(rollback.pk, step_id, actor=request.user, note=note),
        f"Step {step_id} recorded as handled by hand.",
    )
