"""A real Celery worker (prefork, two processes) on Redis against the pytest database, and a test integrator.

One worker serves a whole module; a test that kills it starts the next. Every worker is started in a session of
its own and killed as a group, so no pool process outlives the run.
"""

import contextlib
import os
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from policies.services import load_policy
from rollback_console import queues
from rollback_console.celery import app as celery_app
from tests.conftest import DEMO_MANIFEST
from tests.integration.receiver import Receiver

SECRET = os.environ.setdefault("SHOP_WEBHOOK_SECRET", "integration-secret")
WORKER_VISIBILITY_TIMEOUT = 2  # seconds: a killed worker's tasks come back quickly


def broker_is_redis() -> bool:
    return str(settings.CELERY_BROKER_URL).startswith("redis://")


def wait_until(predicate: Callable[[], Any], *, timeout: float, interval: float = 0.05, message: Any = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout}s: {message() if callable(message) else message}")
        time.sleep(interval)


class WorkerProcess:
    """`celery -A ... worker --pool prefork -c 2` as a subprocess, started and killed by the tests."""

    def __init__(self, queue: str, env: dict[str, str], log_dir: Path) -> None:
        self.queue, self.env, self.log_dir = queue, env, log_dir
        self.process: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.log_path = self.log_dir / f"worker-{self.starts}.log"
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [
                    str(Path(settings.BASE_DIR) / ".venv" / "bin" / "celery"),
                    "-A",
                    "tests.integration.worker_app",
                    "worker",
                    "--pool",
                    "prefork",
                    "-c",
                    "2",
                    "-Q",
                    ",".join(queues.queue_names(self.queue + "-")),  # all three, as the demo's worker takes them
                    "-n",
                    f"{self.queue}-{self.starts}@%h",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "-l",
                    "info",
                ],
                cwd=settings.BASE_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killing the group takes the pool with it
            )
        wait_until(lambda: "ready." in self.log(), timeout=60, interval=0.1, message=self.log)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the main process and its pool at once, as a crashed machine would."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


def worker_env(queue: str, receiver: Receiver, broker_url: str) -> dict[str, str]:
    """The environment of a test worker: the pytest database, the given broker, the test receiver."""
    db = connection.settings_dict
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER'] or 'root'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/"
        f"{db['NAME']}",
        "CELERY_BROKER_URL": broker_url,
        "CELERY_VISIBILITY_TIMEOUT": str(WORKER_VISIBILITY_TIMEOUT),
        "RC_TEST_QUEUE": queue,
        "RC_TEST_RECEIVER_URL": receiver.url,
        "SHOP_WEBHOOK_SECRET": SECRET,
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "integration-tests-" + "x" * 50),
        "DB_CONN_MAX_AGE": "0",
        "PYTHON_REVERSAL_MODULES": ",".join(settings.PYTHON_REVERSAL_MODULES),
    }


@pytest.fixture(scope="module")
def worker_process(django_db_setup, receiver) -> Iterator[WorkerProcess]:
    """The module's worker, on a queue of its own, reading and writing the pytest database."""
    if connection.vendor != "postgresql" or not broker_is_redis():
        pytest.skip("real workers run on PostgreSQL and Redis")
    queue = f"rc-test-{uuid.uuid4().hex[:12]}"
    env = worker_env(queue, receiver, str(settings.CELERY_BROKER_URL))
    with tempfile.TemporaryDirectory(prefix="rc-worker-") as log_dir, routed_to(queue):
        worker = WorkerProcess(queue, env, Path(log_dir))
        try:
            worker.start()
            yield worker
        finally:
            worker.kill()
            with celery_app.connection_for_write() as conn:
                for name in queues.queue_names(queue + "-"):
                    conn.default_channel.queue_purge(name)


@contextlib.contextmanager
def routed_to(queue: str) -> Iterator[None]:
    """What this process queues goes to the queues of the worker started on `queue` (tests/integration/worker_app)."""
    previous = {"task_routes": celery_app.conf.task_routes, "task_default_queue": celery_app.conf.task_default_queue}
    reroute(task_routes=queues.routes(queue + "-"), task_default_queue=queue + "-" + queues.HOUSEKEEPING)
    try:
        yield
    finally:
        reroute(**previous)


def reroute(**conf: Any) -> None:
    """Change the app's routes at run time: Celery builds its router once, so it is built again. The app reads
    Django's settings under the CELERY_ namespace, so the keys are written with it."""
    celery_app.conf.update({f"CELERY_{key.upper()}": value for key, value in conf.items()})
    celery_app.amqp.flush_routes()
    celery_app.amqp.__dict__.pop("router", None)  # a cached property


@pytest.fixture
def running_worker(worker_process, receiver) -> WorkerProcess:
    receiver.reset()
    if not worker_process.alive():
        worker_process.start()
    return worker_process


@pytest.fixture
def receiver_policy(cast, receiver) -> None:
    """The demo policy with every integrator URL and python handler pointing at the test receiver."""
    text = (
        DEMO_MANIFEST.read_text()
        .replace('version = "demo-2026-11"', 'version = "integration-tests"')
        .replace("http://127.0.0.1:8000/demo-shop/reversals", f"{receiver.url}/reversals")
        .replace("http://127.0.0.1:8000/demo-shop/notifications", f"{receiver.url}/notifications")
        .replace("http://127.0.0.1:8000/demo-shop/events", f"{receiver.url}/events")
        .replace("demo_shop.handlers.", "tests.integration.handlers.")
    )
    load_policy(text, actor="test-setup")
