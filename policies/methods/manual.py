from collections.abc import Mapping
from typing import Any, ClassVar

from policies.methods.base import PhaseResult, ReversalCall, unknown_keys


class ManualMethod:
    """A person reverses the action by hand; the step opens a remediation task for them."""

    name: ClassVar[str] = "manual"

    def validate(self, reversal: Mapping[str, Any], manifest: Mapping[str, Any]) -> list[tuple[str, str]]:
        errors = unknown_keys(reversal, {"method", "operation", "instructions"})
        instructions = reversal.get("instructions")
        if instructions is not None and not isinstance(instructions, str):
            errors.append(("instructions", "must be a string"))
        return errors

    def run(self, call: ReversalCall) -> PhaseResult:
        if call.phase == "check":
            return PhaseResult(status="ok")
        return PhaseResult(status="manual", detail=str(call.config.get("instructions", "Reverse by hand.")))
