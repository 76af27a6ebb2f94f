"""Which Celery queue each of our tasks runs on (settings build `CELERY_TASK_ROUTES` and `CELERY_TASK_QUEUES` here).

Three queues, so that work of one kind cannot starve another: a slow integrator fills `execution`, yet sign-off
follow-ups and customer messages (`communications`) and the sweeper and the audit anchors (`housekeeping`) are
taken by workers of their own. Compose runs one worker service per queue (docs/execution.md); the demo's single
worker consumes all three. Routes are by the name a task is registered under (rollbacks.dispatch names them), so
rollbacks.dispatch keeps queueing with `.delay` and the route decides the queue. A task registered without a route
here fails tests/test_queues.py.

A prefix (`CELERY_QUEUE_PREFIX`) lets several deployments, or parallel test runs, share one Redis database.
Plain Python, no Django: settings import it.
"""

EXECUTION = "execution"
COMMUNICATIONS = "communications"
HOUSEKEEPING = "housekeeping"
QUEUES = (EXECUTION, COMMUNICATIONS, HOUSEKEEPING)

TASK_QUEUES = {
    "rollbacks.tasks.run_rollback": EXECUTION,
    "rollbacks.tasks.execute_steps": EXECUTION,
    "rollbacks.tasks.send_communication": COMMUNICATIONS,
    "rollbacks.tasks.send_integrator_events": COMMUNICATIONS,
    "rollbacks.tasks.announce_inbox_items": COMMUNICATIONS,
    "rollbacks.tasks.send_announcement": COMMUNICATIONS,
    "rollbacks.tasks.resume_stalled_rollbacks": HOUSEKEEPING,
    "audit.tasks.anchor_audit_head": HOUSEKEEPING,
    "audit.tasks.deliver_audit_anchors": HOUSEKEEPING,
    "audit.tasks.verify_audit_trail": HOUSEKEEPING,
    "audit.tasks.flush_access_failures": HOUSEKEEPING,
}


def queue_names(prefix: str = "") -> list[str]:
    """The queues' names on the broker, in the order `celery worker -Q` takes them."""
    return [prefix + queue for queue in QUEUES]


def routes(prefix: str = "") -> dict[str, dict[str, str]]:
    """`task_routes`: each task of ours to its queue."""
    return {task: {"queue": prefix + queue} for task, queue in TASK_QUEUES.items()}
