from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from django.utils.module_loading import import_string

from policies.methods.base import PhaseResult, ReversalCall, unknown_keys


class PythonMethod:
    """Calls `handler(call) -> PhaseResult | dict` in-process, once per phase."""

    name: ClassVar[str] = "python"

    def validate(self, reversal: Mapping[str, Any], manifest: Mapping[str, Any]) -> list[tuple[str, str]]:
        errors = unknown_keys(reversal, {"method", "handler", "operation"})
        handler = reversal.get("handler")
        if not isinstance(handler, str) or "." not in handler:
            errors.append(("handler", "a dotted path to a callable is required"))
        else:
            try:
                import_string(handler)
            except ImportError as exc:
                errors.append(("handler", f"cannot be imported: {exc}"))
        return errors

    def run(self, call: ReversalCall) -> PhaseResult:
        handler: Callable[[ReversalCall], PhaseResult | Mapping[str, Any]] = import_string(call.config["handler"])
        result = handler(call)
        if isinstance(result, PhaseResult):
            return result
        return PhaseResult(
            status=result.get("status", "failed"),
            unmet=tuple(result.get("unmet", ())),
            detail=str(result.get("detail", "")),
        )
