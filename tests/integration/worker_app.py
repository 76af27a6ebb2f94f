"""The project's Celery app as the integration tests start it: a queue of its own (so parallel test processes and
other engineers' workers never take each other's tasks) and a quick look for unacknowledged messages to redeliver."""

import os

from rollback_console.celery import app

app.conf.task_default_queue = os.environ["RC_TEST_QUEUE"]
# kombu looks for unacknowledged messages older than the visibility timeout on every tenth tick: about once a second.
app.conf.broker_transport_options = {**app.conf.broker_transport_options, "unacked_restore_interval": 0.1}

__all__ = ["app"]
