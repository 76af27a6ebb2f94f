"""Celery adapters over rollbacks.execution and rollbacks.communications: load by id, call a service.

Each function is named `<service>_task`, so a reader (or a tool) never takes the task for the service it calls;
each is registered under the name rollbacks.dispatch gives it, unchanged since the tasks were named like the
services, so messages in flight and beat's stored schedule entries keep working (docs/execution.md).

Every task is acknowledged late and requeued if its worker dies (settings), and every service below is safe to
run twice, so a redelivered message changes nothing that was done. None of them trusts its message: the services
refuse (and audit) work the rollback's state does not allow (rollbacks.guard), and a refusal is never retried.
"""

from typing import Any

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError

from rollbacks import announcements, communications, dispatch, events, execution

# A database that is briefly unreachable is worth waiting for; the backoff stays far below the visibility timeout.
_DATABASE_ERRORS = (OperationalError, InterfaceError)
_DATABASE_RETRY = {"autoretry_for": _DATABASE_ERRORS, "retry_backoff": 2, "retry_backoff_max": 30}


def _message(task: Task) -> dict[str, Any]:
    """Where a message came from, for the trail should it be refused: beat names its schedule entry."""
    request = task.request
    # A worker sets a message's own headers as attributes of the request; `apply` keeps them in `headers`.
    headers = request.headers if isinstance(request.headers, dict) else {}
    found = {
        "task": task.name,
        "message": request.id,
        "origin": getattr(request, "origin", None),
        "periodic_task": getattr(request, "periodic_task_name", None) or headers.get("periodic_task_name"),
    }
    return {key: str(value) for key, value in found.items() if value}


@shared_task(name=dispatch.RUN_ROLLBACK, bind=True, max_retries=10, **_DATABASE_RETRY)
def run_rollback_task(self: Task, rollback_id: int) -> None:
    execution.run_rollback(rollback_id, message=_message(self))


@shared_task(name=dispatch.EXECUTE_STEPS, bind=True, max_retries=10, **_DATABASE_RETRY)
def execute_steps_task(self: Task, step_ids: list[int]) -> None:
    batch = execution.run_steps(step_ids, message=_message(self))
    # A step's retry is this task again, later: the service decided it, in a transaction already committed.
    for delay, retry_ids in batch.retries.items():
        execute_steps_task.apply_async((retry_ids,), countdown=delay)


# Attempts at a message are bounded by NOTIFY_MAX_ATTEMPTS in the service, not by Celery.
@shared_task(name=dispatch.SEND_COMMUNICATION, bind=True, max_retries=None, **_DATABASE_RETRY)
def send_communication_task(self: Task, communication_id: int) -> None:
    delivery = communications.send_communication(communication_id, message=_message(self))
    if delivery is None:
        return
    if delivery.retry_in is not None:
        raise self.retry(countdown=delivery.retry_in)
    execution.run_rollback(delivery.rollback_id)


# Attempts are bounded by NOTIFY_MAX_ATTEMPTS in the service, as for communications.
@shared_task(name=dispatch.SEND_INTEGRATOR_EVENTS, bind=True, max_retries=None, **_DATABASE_RETRY)
def send_integrator_events_task(self: Task, rollback_id: int) -> None:
    retry_in = events.send_integrator_events(rollback_id)
    if retry_in is not None:
        raise self.retry(countdown=retry_in)


@shared_task(name=dispatch.RESUME_STALLED_ROLLBACKS)
def resume_stalled_rollbacks_task() -> list[int]:
    return execution.resume_stalled_rollbacks()


@shared_task(name=dispatch.ANNOUNCE_INBOX_ITEMS)
def announce_inbox_items_task() -> list[int]:
    return announcements.announce_inbox_items()


# Attempts are bounded by NOTIFY_MAX_ATTEMPTS in the service, as for communications.
@shared_task(name=dispatch.SEND_ANNOUNCEMENT, bind=True, max_retries=None, **_DATABASE_RETRY)
def send_announcement_task(self: Task, delivery_id: int) -> None:
    retry_in = announcements.send_announcement(delivery_id, message=_message(self))
    if retry_in is not None:
        raise self.retry(countdown=retry_in)
