"""Celery adapters over rollbacks.execution and rollbacks.communications: load by id, call a service.

Every task is acknowledged late and requeued if its worker dies (settings), and every service below is safe to
run twice, so a redelivered message changes nothing that was done.
"""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from rollbacks import communications, execution

# A database that is briefly unreachable is worth waiting for; the backoff stays far below the visibility timeout.
_DATABASE_ERRORS = (OperationalError, InterfaceError)
_DATABASE_RETRY = {"autoretry_for": _DATABASE_ERRORS, "retry_backoff": 2, "retry_backoff_max": 30}


@shared_task(max_retries=10, **_DATABASE_RETRY)
def run_rollback(rollback_id: int) -> None:
    execution.run_rollback(rollback_id)


@shared_task(max_retries=10, **_DATABASE_RETRY)
def execute_steps(step_ids: list[int]) -> None:
    batch = execution.run_steps(step_ids)
    for delay, retry_ids in batch.retries.items():
        execute_steps.apply_async((retry_ids,), countdown=delay)


# Attempts at a message are bounded by NOTIFY_MAX_ATTEMPTS in the service, not by Celery.
@shared_task(bind=True, max_retries=None, **_DATABASE_RETRY)
def send_communication(self, communication_id: int) -> None:  # type: ignore[no-untyped-def]
    delivery = communications.send_communication(communication_id)
    if delivery is None:
        return
    if delivery.retry_in is not None:
        raise self.retry(countdown=delivery.retry_in)
    execution.run_rollback(delivery.rollback_id)


@shared_task
def resume_stalled_rollbacks() -> list[int]:
    return execution.resume_stalled_rollbacks()
