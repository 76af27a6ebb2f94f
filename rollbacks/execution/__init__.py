"""The execution engine: workers reverse authorized rollbacks and their cascades, once, with compensation,
verification and communication.

- cascade.py: a rollback's run, level by level; pause and confirmation; the end state; the stalled sweeper
- steps.py: one step's phases (check, reverse, compensations, verify), durable phase by phase
- outcomes.py: ending a step together with its action's state and any remediation task
- remediation.py: retrying and resolving steps by hand
- claims.py: one worker per action at a time
"""

from rollbacks.execution.cascade import confirm_cascade, resume_stalled_rollbacks, run_rollback, run_steps
from rollbacks.execution.remediation import complete_remediation, resolve_step, retry_step

__all__ = [
    "complete_remediation",
    "confirm_cascade",
    "resolve_step",
    "resume_stalled_rollbacks",
    "retry_step",
    "run_rollback",
    "run_steps",
]
