"""The project's Celery app as the integration tests start it: queues of their own (the three of
rollback_console/queues.py under a prefix, so parallel test processes and other engineers' workers never take each
other's tasks) and a quick look for unacknowledged messages to redeliver."""

import os

from rollback_console import queues
from rollback_console.celery import app

_prefix = os.environ["RC_TEST_QUEUE"] + "-"
# The app reads Django's settings under the CELERY_ namespace: keys changed here are written with it.
app.conf.update(
    CELERY_TASK_ROUTES=queues.routes(_prefix),
    CELERY_TASK_DEFAULT_QUEUE=_prefix + queues.HOUSEKEEPING,
    # kombu looks for unacknowledged messages older than the visibility timeout on every tenth tick: about once a
    # second.
    CELERY_BROKER_TRANSPORT_OPTIONS={**app.conf.broker_transport_options, "unacked_restore_interval": 0.1},
)
app.amqp.flush_routes()
app.amqp.__dict__.pop("router", None)  # Celery builds its router once: built again with these routes

__all__ = ["app"]
