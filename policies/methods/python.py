from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from django.conf import settings
from django.utils.module_loading import import_string

from policies.methods.base import PhaseResult, ReversalCall, unknown_keys


def handler_allowed(handler: str) -> bool:
    """Whether `handler` lies under a module prefix in PYTHON_REVERSAL_MODULES. Checked before anything is
    imported: importing a module runs it, and a manifest must not be able to name `os.system`."""
    for prefix in settings.PYTHON_REVERSAL_MODULES:
        prefix = prefix.rstrip(".")
        if prefix and (handler == prefix or handler.startswith(prefix + ".")):
            return True
    return False


class PythonMethod:
    """Calls `handler(call) -> PhaseResult | dict` in-process, once per phase."""

    name: ClassVar[str] = "python"

    def validate(self, reversal: Mapping[str, Any], manifest: Mapping[str, Any]) -> list[tuple[str, str]]:
        errors = unknown_keys(reversal, {"method", "handler", "operation"})
        handler = reversal.get("handler")
        if not isinstance(handler, str) or "." not in handler:
            errors.append(("handler", "a dotted path to a callable is required"))
        elif not handler_allowed(handler):
            allowed = ", ".join(settings.PYTHON_REVERSAL_MODULES) or "none"
            errors.append(("handler", f"{handler!r} is not under a module in PYTHON_REVERSAL_MODULES ({allowed})"))
        else:
            try:
                import_string(handler)
            except ImportError as exc:
                errors.append(("handler", f"cannot be imported: {exc}"))
        return errors

    def run(self, call: ReversalCall) -> PhaseResult:
        if not handler_allowed(str(call.config.get("handler", ""))):
            # A version loaded before the setting narrowed: refuse rather than import it.
            return PhaseResult(status="failed", detail="the handler is not under a module in PYTHON_REVERSAL_MODULES")
        handler: Callable[[ReversalCall], PhaseResult | Mapping[str, Any]] = import_string(call.config["handler"])
        result = handler(call)
        if isinstance(result, PhaseResult):
            return result
        return PhaseResult(
            status=result.get("status", "failed"),
            unmet=tuple(result.get("unmet", ())),
            detail=str(result.get("detail", "")),
        )
