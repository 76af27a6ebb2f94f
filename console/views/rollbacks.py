"""A rollback request's page, its progress fragment, and the buttons on it (each calls the API's service)."""

from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from audit.selectors import latest_audit_events
from console.access import console_page
from console.drawing import GraphNode, cascade_svg
from console.forms import NoteForm, SignOffForm, errors_text
from rollback_console.errors import DomainError, Invalid
from rollbacks.circuits import circuits_holding
from rollbacks.execution import confirm_cascade, resolve_step, retry_step
from rollbacks.models import FINISHED_OUTCOMES, NEEDS_PERSON_OUTCOMES, Rollback, SignoffDecision, Step, StepOutcome
from rollbacks.rules import (
    RESOLVABLE_OUTCOMES,
    RETRYABLE_OUTCOMES,
    RUNNING_STATES,
    STARTED_STATES,
    Refusal,
    approved_any_target,
    cancel_refusal,
    carry_on_refusal,
    confirm_refusal,
    signing_role,
)
from rollbacks.selectors import (
    communications_of,
    get_rollback_for,
    remediation_of,
    signoffs_of,
    step_outcomes,
    steps_of,
    trail_scope_for,
)
from rollbacks.services import cancel_rollback, sign_off

# The trail on the page is the newest part; the whole of it is in the API and the export.
AUDIT_ROWS = 200
TARGET_ROWS = 50


@dataclass(frozen=True)
class Requirement:
    role: str
    count: int
    given: int

    @property
    def missing(self) -> int:
        return max(0, self.count - self.given)


@dataclass(frozen=True)
class Progress:
    total: int
    finished: int
    needs_person: int
    waiting: int  # awaiting confirmation
    by_outcome: list[tuple[str, int]]

    @property
    def percent(self) -> int:
        return round(100 * (self.finished + self.needs_person) / self.total) if self.total else 100


def _requirements(rollback: Rollback, signoffs: list[Any]) -> list[Requirement]:
    given = Counter(signoff.role for signoff in signoffs if signoff.decision == SignoffDecision.APPROVE)
    return [
        Requirement(role=req["role"], count=req["count"], given=given.get(req["role"], 0))
        for req in rollback.required_signoffs
    ]


def _graph(rollback: Rollback, steps: list[Step]) -> Any:
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
    return cascade_svg(nodes, authorized_depth=rollback.confirmed_depth)


def _progress(each_step: list[str]) -> Progress:
    outcomes = Counter(each_step)
    return Progress(
        total=len(each_step),
        finished=sum(outcomes[o] for o in FINISHED_OUTCOMES),
        needs_person=sum(outcomes[o] for o in NEEDS_PERSON_OUTCOMES),
        waiting=outcomes[StepOutcome.AWAITING_CONFIRMATION],
        by_outcome=sorted(outcomes.items()),
    )


@require_GET
@console_page()
def rollback_page(request: HttpRequest, rollback_id: int) -> HttpResponse:
    user = request.user
    rollback = get_rollback_for(user, rollback_id)
    steps = steps_of(rollback)
    signoffs = signoffs_of(rollback)
    communications = communications_of(rollback)
    remediation = remediation_of(rollback)
    targets = [step for step in steps if step.depth == 0 and not step.is_loop]
    requirements = _requirements(rollback, signoffs)
    # The rules the services apply, asked with the facts this page loaded (the services ask again under the lock).
    approved_error = approved_any_target(user, rollback, targets)
    sign = signing_role(
        user,
        rollback,
        signed=any(signoff.signer_id == user.pk for signoff in signoffs),
        approvals={req.role: req.given for req in requirements},
        approved_error=approved_error,
    )
    carry_on = carry_on_refusal(user, rollback, approved_error=approved_error) is None
    prerequisites = sorted({p for step in steps for p in step.action.prerequisites})
    side_effects = sorted({s for step in steps for s in step.action.side_effects})
    windows = [step.action.window_ends_at for step in targets if step.action.window_ends_at is not None]
    return render(
        request,
        "console/rollback.html",
        {
            "rollback": rollback,
            "steps": steps,
            "targets": targets[:TARGET_ROWS],
            "more_targets": max(0, len(targets) - TARGET_ROWS),
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
            "progress": _progress([step.outcome for step in steps]),
            "graph": _graph(rollback, steps),
            "communications": communications,
            "remediation": remediation,
            "events": latest_audit_events(rollback_id=rollback.pk, scope=trail_scope_for(user), limit=AUDIT_ROWS),
            "prerequisites": prerequisites,
            "side_effects": side_effects,
            "window_closes": min(windows) if windows else None,
            # Integrators whose circuit is open hold their steps pending: the step list says so.
            "held_by_circuits": circuits_holding(
                rollback.policy_version_id,
                [step.action.action_type for step in steps if step.outcome == StepOutcome.PENDING],
            )
            if rollback.state in RUNNING_STATES
            else {},
        },
    )


@require_GET
@console_page()
def rollback_progress(request: HttpRequest, rollback_id: int) -> HttpResponse:
    """The progress bar alone, polled while the rollback runs. When the state has moved on from the one the page
    was drawn in, ask htmx to reload the page so outcomes and buttons are current."""
    rollback = get_rollback_for(request.user, rollback_id)
    outcomes = step_outcomes(rollback)
    response = render(
        request,
        "console/_progress.html",
        {
            "rollback": rollback,
            "progress": _progress(outcomes),
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


@require_POST
@console_page()
def rollback_cancel(request: HttpRequest, rollback_id: int) -> HttpResponse:
    rollback = get_rollback_for(request.user, rollback_id)
    return _after(request, rollback.pk, lambda: cancel_rollback(rollback.pk, actor=request.user), "Rollback cancelled.")


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
