"""Batch decisions: one decision and one comment over several requests ticked on the queue. Each request is
signed on its own by the service, and the page says which were signed and which were refused, and why."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from console.access import console_page
from console.forms import BatchDecisionForm
from rollback_console.errors import Invalid
from rollbacks.models import SignoffDecision
from rollbacks.services import sign_off_many


@require_POST
@console_page()
def batch_decide(request: HttpRequest) -> HttpResponse:
    form = BatchDecisionForm(request.POST)
    if not form.is_valid():
        errors = [str(error) for errors in form.errors.values() for error in errors]
        return render(request, "console/batch_result.html", {"errors": errors}, status=400)
    decision = form.cleaned_data["decision"]
    try:
        outcomes = sign_off_many(
            form.cleaned_data["rollback"],
            signer=request.user,
            decision=decision,
            comment=form.cleaned_data["comment"],
        )
    except Invalid as exc:
        errors = [str(problem) for problems in exc.errors.values() for problem in problems]
        return render(request, "console/batch_result.html", {"errors": errors}, status=400)
    signed = [outcome for outcome in outcomes if outcome.signed]
    return render(
        request,
        "console/batch_result.html",
        {
            "approve": decision == SignoffDecision.APPROVE,
            "signed": signed,
            "refused": [outcome for outcome in outcomes if not outcome.signed],
            "total": len(outcomes),
            "trigger": outcomes[0].rollback.trigger,
            "comment": form.cleaned_data["comment"],
        },
    )
