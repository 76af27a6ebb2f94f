"""The one place that queues work for the workers, always after the transaction that decided it commits.

Tasks are named here by the names they are registered under (rollbacks.tasks passes each one as `name=`), and
looked up in the Celery app's registry when a message goes out. That keeps the direction one way: the tasks call
the services, the services queue through this module, and no service imports the tasks (the cycle
`tasks -> execution -> cascade -> tasks` used to be broken by imports inside functions). The names are the ones
on the wire: messages in flight and beat's schedule entries (rows in the database) keep working whatever the
task functions are called in Python.
"""

from django.db import transaction

from rollback_console.celery import app

RUN_ROLLBACK = "rollbacks.tasks.run_rollback"
EXECUTE_STEPS = "rollbacks.tasks.execute_steps"
SEND_COMMUNICATION = "rollbacks.tasks.send_communication"
RESUME_STALLED_ROLLBACKS = "rollbacks.tasks.resume_stalled_rollbacks"
SEND_INTEGRATOR_EVENTS = "rollbacks.tasks.send_integrator_events"
ANNOUNCE_INBOX_ITEMS = "rollbacks.tasks.announce_inbox_items"
SEND_ANNOUNCEMENT = "rollbacks.tasks.send_announcement"

# Steps per task: large enough that queueing costs little per step, small enough that two workers share a level.
BATCH_SIZE = 50


def queue_rollback(rollback_id: int) -> None:
    """Start an authorized rollback, or carry one on, once the current transaction commits."""
    transaction.on_commit(lambda: app.tasks[RUN_ROLLBACK].delay(rollback_id))


def queue_steps(step_ids: list[int]) -> None:
    """Run steps (marked queued, `started_at`, in the current transaction) in batches once it commits."""
    batches = [step_ids[start : start + BATCH_SIZE] for start in range(0, len(step_ids), BATCH_SIZE)]
    transaction.on_commit(lambda: [app.tasks[EXECUTE_STEPS].delay(batch) for batch in batches])


def queue_communications(communication_ids: list[int]) -> None:
    """Send messages once the current transaction commits."""
    transaction.on_commit(lambda: [app.tasks[SEND_COMMUNICATION].delay(pk) for pk in communication_ids])


def queue_integrator_events(rollback_id: int) -> None:
    """Send the rollback's pending integrator events, in order, once the current transaction commits."""
    transaction.on_commit(lambda: app.tasks[SEND_INTEGRATOR_EVENTS].delay(rollback_id))


def queue_announcing() -> None:
    """Announce what entered people's inboxes once the current transaction commits. Beat does the same every
    minute (settings.CELERY_BEAT_SCHEDULE), so this nudge only makes it sooner: a lost one costs a minute."""
    transaction.on_commit(lambda: app.tasks[ANNOUNCE_INBOX_ITEMS].delay())


def queue_announcement_deliveries(delivery_ids: list[int]) -> None:
    """Send announcements' messages once the current transaction commits."""
    transaction.on_commit(lambda: [app.tasks[SEND_ANNOUNCEMENT].delay(pk) for pk in delivery_ids])
