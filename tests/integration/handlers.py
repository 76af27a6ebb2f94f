"""Python reversal handlers for the integration tests: they forward each phase, signed, to the test receiver, so
the receiver sees every effect whichever method the manifest names."""

import json
import os

from policies.methods.base import PhaseResult, ReversalCall
from policies.methods.webhook import post_signed


def _forward(operation: str, call: ReversalCall) -> PhaseResult:
    payload = {
        "phase": call.phase,
        "step_id": call.step_id,
        "rollback_id": call.rollback_id,
        "trigger": call.trigger,
        "operation": operation,
        "action": dict(call.action),
    }
    status, raw = post_signed(
        os.environ["RC_TEST_RECEIVER_URL"] + "/reversals",
        payload,
        os.environ["SHOP_WEBHOOK_SECRET"],
        idempotency_key=f"step-{call.step_id}-{call.phase}",
    )
    if status == 0 or status >= 500:
        return PhaseResult(status="failed", detail=f"HTTP {status}", retryable=True)
    answer = json.loads(raw)
    return PhaseResult(status=answer["status"], unmet=tuple(answer.get("unmet", ())), detail=answer.get("detail", ""))


def restore_benefits(call: ReversalCall) -> PhaseResult:
    return _forward("benefits.restore", call)


def suspend_membership(call: ReversalCall) -> PhaseResult:
    return _forward("membership.suspend", call)


def restore_record(call: ReversalCall) -> PhaseResult:
    return _forward("record.restore", call)
