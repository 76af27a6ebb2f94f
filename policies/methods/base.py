"""The interface every reversal method implements.

A method is called once per phase of a step: `check` (prerequisites), `reverse`, `verify`. It knows nothing of
our models: it gets a ReversalCall of plain data and answers a PhaseResult.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

Phase = Literal["check", "reverse", "verify"]
PHASES: tuple[Phase, ...] = ("check", "reverse", "verify")


@dataclass(frozen=True)
class ReversalCall:
    phase: Phase
    step_id: int
    rollback_id: int
    trigger: str
    operation: str
    action: Mapping[str, Any]  # {"external_id", "action_type", "subject", "payload"}
    config: Mapping[str, Any]  # the action type's `reversal` table from the manifest
    integrator: Mapping[str, Any] | None = None  # the `[integrators.KEY]` table, for webhook calls


@dataclass(frozen=True)
class PhaseResult:
    status: Literal["ok", "unmet", "failed", "manual"]
    unmet: tuple[str, ...] = ()
    detail: str = ""
    retryable: bool = False  # a transient failure (timeout, 5xx): the step may be tried again later
    extra: Mapping[str, Any] = field(default_factory=dict)


class ReversalMethod(Protocol):
    name: ClassVar[str]

    def validate(self, reversal: Mapping[str, Any], manifest: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Errors in an action type's `reversal` table, as (key below `reversal`, message) pairs."""
        ...

    def run(self, call: ReversalCall) -> PhaseResult: ...


def unknown_keys(table: Mapping[str, Any], allowed: set[str]) -> list[tuple[str, str]]:
    return [(key, "unknown key") for key in table if key not in allowed]
