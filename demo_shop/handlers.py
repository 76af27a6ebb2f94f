"""Python reversal handlers for the demo policy's in-process action types (filled in by the demo shop)."""

from policies.methods.base import PhaseResult, ReversalCall


def restore_benefits(call: ReversalCall) -> PhaseResult:
    return PhaseResult(status="ok")


def suspend_membership(call: ReversalCall) -> PhaseResult:
    return PhaseResult(status="ok")


def restore_record(call: ReversalCall) -> PhaseResult:
    return PhaseResult(status="ok")
