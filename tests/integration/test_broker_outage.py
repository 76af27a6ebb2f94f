"""A Redis restart mid-rollback: the worker survives it (or its supervisor restarts it) and the rollback completes
with each effect once; and a warm shutdown (SIGTERM) finishes the call in flight before the worker exits. Redis
here is a private redis-server on a spare port, stopped and started by the test, with an append-only file as
compose's Redis has, so what was queued survives the restart as it does there."""

import contextlib
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from actions.models import Action
from rollback_console.celery import app as celery_app
from tests.integration.conftest import WorkerProcess, broker_is_redis, routed_to, wait_until, worker_env
from tests.integration.test_worker_execution import assert_each_reversal_applied_once, authorize, chain, settled

pytestmark = [
    pytest.mark.worker,
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="real workers run against PostgreSQL"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("receiver_policy"),
]


def spare_port() -> int:
    for port in range(6390, 6490):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise AssertionError("no spare port for a private Redis")


class PrivateRedis:
    """`redis-server` on a spare port, its data (an append-only file) in a temporary directory."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.port = directory, spare_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        subprocess.run(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
             "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "yes",
             "--pidfile", str(self.directory / "redis.pid"), "--logfile", str(self.directory / "redis.log")],
            check=True,
        )  # fmt: skip
        wait_until(self.answers, timeout=10, message="the private Redis did not start")

    def stop(self) -> None:
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown"], check=False, capture_output=True)
        wait_until(lambda: not self.answers(), timeout=10, message="the private Redis did not stop")

    def answers(self) -> bool:
        result = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True)
        return result.stdout.strip() == "PONG"


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    if not broker_is_redis():
        pytest.skip("real workers run on PostgreSQL and Redis")
    with tempfile.TemporaryDirectory(prefix="rc-redis-") as directory:
        redis = PrivateRedis(Path(directory))
        redis.start()
        try:
            yield redis
        finally:
            redis.stop()


def forget_broker_connections() -> None:
    """This process connects anew, to the broker CELERY_BROKER_URL names now (Celery prefers the environment
    variable to its setting)."""
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def outage_worker(private_redis, receiver, monkeypatch) -> Iterator[WorkerProcess]:
    queue = f"rc-test-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("CELERY_BROKER_URL", private_redis.url)
    forget_broker_connections()
    receiver.reset()
    with tempfile.TemporaryDirectory(prefix="rc-worker-") as log_dir, routed_to(queue):
        worker = WorkerProcess(queue, worker_env(queue, receiver, private_redis.url), Path(log_dir))
        try:
            worker.start()
            yield worker
        finally:
            worker.kill()
            monkeypatch.undo()
            forget_broker_connections()


def test_a_redis_restart_mid_rollback_leaves_the_worker_running_and_the_rollback_completes_once(
    cast, receiver, private_redis, outage_worker
):
    targets = chain(cast, "refund.issue", "loyalty.points_grant", "tier.upgrade", prefix="o")
    hold = receiver.hold_at("o-1", "reverse")

    rollback = authorize(cast, [Action.objects.get(external_id="o-0")])
    assert hold.reached.wait(timeout=30), outage_worker.log()[-3000:]
    private_redis.stop()  # a call is in flight at the integrator, its task unacknowledged
    time.sleep(3)
    receiver.release()  # the call ends while Redis is away: its task records the outcome, then queues the next level
    time.sleep(7)
    private_redis.start()

    settled(rollback, outage_worker, timeout=120)
    log = outage_worker.log()
    assert "Connection to broker lost" in log, "the outage reached the worker"
    assert outage_worker.alive() and outage_worker.starts == 1, log[-3000:]
    assert "Unrecoverable error" not in log, log[-3000:]
    assert rollback.state == "completed"
    assert {step.action.external_id: step.outcome for step in rollback.steps.all()} == {
        "o-0": "reversed",
        "o-1": "reversed",
        "o-2": "reversed",
    }
    assert_each_reversal_applied_once(receiver, [action.external_id for action in targets])
    with contextlib.suppress(Exception):
        receiver.reset()


def test_a_warm_shutdown_finishes_the_call_in_flight_and_the_next_worker_carries_on_once(cast, receiver, outage_worker):
    targets = chain(cast, "refund.issue", "loyalty.points_grant", prefix="w")
    hold = receiver.hold_at("w-0", "reverse")
    rollback = authorize(cast, [Action.objects.get(external_id="w-0")])
    assert hold.reached.wait(timeout=30), outage_worker.log()[-3000:]

    assert outage_worker.process is not None
    outage_worker.process.send_signal(signal.SIGTERM)  # docker-compose stop: a warm shutdown
    time.sleep(1)
    assert outage_worker.alive(), "the worker waits for its task in flight"
    receiver.release()
    assert outage_worker.process.wait(timeout=30) == 0
    step = rollback.steps.get(action__external_id="w-0")
    assert step.outcome == "reversed", "the call in flight finished and its outcome was recorded"

    outage_worker.start()
    settled(rollback, outage_worker, timeout=60)
    assert rollback.state == "completed"
    assert receiver.reverse_calls("w-0") == 1, "acknowledged before exiting: not redelivered, not called again"
    assert_each_reversal_applied_once(receiver, [action.external_id for action in targets])
