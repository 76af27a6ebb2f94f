"""Python reversal handlers for the demo policy's in-process action types.

They answer the same three phases as the shop's webhook and go through the same ledger, keyed like the webhook's
Idempotency-Key (`step-{step_id}-{phase}`), so a step retried after a worker died applies its effect once.
"""

from demo_shop.services import KeyReused, ReversalRequest, answer_reversal, body_digest
from policies.methods.base import PhaseResult, ReversalCall


def _run(operation: str, call: ReversalCall) -> PhaseResult:
    action = call.action
    request = ReversalRequest(
        phase=call.phase,
        operation=operation,
        external_id=str(action.get("external_id", "")),
        subject=str(action.get("subject", "")),
        step_id=call.step_id,
        rollback_id=call.rollback_id,
        payload=action.get("payload") or {},
    )
    body = {"phase": call.phase, "operation": operation, "step_id": call.step_id, "action": dict(action)}
    try:
        answer = answer_reversal(
            request, idempotency_key=f"step-{call.step_id}-{call.phase}", digest=body_digest(body), channel="python"
        )
    except KeyReused as exc:
        return PhaseResult(status="failed", detail=str(exc))
    return PhaseResult(
        status=answer["status"], unmet=tuple(answer.get("unmet", ())), detail=str(answer.get("detail", ""))
    )


def restore_benefits(call: ReversalCall) -> PhaseResult:
    """benefits.reevaluate: withdraw the benefits the re-evaluation granted (used ones stay used)."""
    return _run("benefits.restore", call)


def suspend_membership(call: ReversalCall) -> PhaseResult:
    """membership.reinstate: suspend the membership again."""
    return _run("membership.suspend", call)


def restore_record(call: ReversalCall) -> PhaseResult:
    """record.update: put back the values the update replaced."""
    return _run("record.restore", call)
