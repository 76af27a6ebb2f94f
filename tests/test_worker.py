"""A real Celery worker on the embedded filesystem broker, as `scripts/demo` runs it (no Redis)."""

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings
from django.db import connection

from audit.models import AuditChainHead
from rollback_console import queues

pytestmark = pytest.mark.worker


def filesystem_options(var_dir: Path) -> dict[str, object]:
    broker = var_dir / "broker"
    for folder in ("queue", "processed", "control"):
        (broker / folder).mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(broker / "queue"),
        "data_folder_out": str(broker / "queue"),
        "processed_folder": str(broker / "processed"),
        "control_folder": str(broker / "control"),
    }


@contextmanager
def filesystem_worker(tmp_path: Path, monkeypatch, **env: str) -> Iterator[Callable[..., str]]:
    """A `celery -A rollback_console worker` on the filesystem broker under `tmp_path`; yields `send(task, *args)`,
    which queues a task and returns its log once the worker reports it succeeded."""
    environment = {
        **os.environ,
        "CELERY_BROKER_URL": "filesystem://",
        "VAR_DIR": str(tmp_path),
        "SECRET_KEY": "worker-test-" + "x" * 50,
        **env,
    }
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "rollback_console", "worker", "--pool", "solo", "--loglevel",
             "INFO", "--without-gossip", "--without-mingle", "--hostname", "test@%h"],
            cwd=settings.BASE_DIR, env=environment, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    monkeypatch.setenv("CELERY_BROKER_URL", "filesystem://")  # Celery prefers it to the app's own setting
    sender = Celery(broker="filesystem://")
    sender.conf.broker_transport_options = filesystem_options(tmp_path)
    # To the queues the worker consumes, as the project's app routes (anything else to its default queue).
    sender.conf.task_routes = queues.routes()
    sender.conf.task_default_queue = queues.HOUSEKEEPING

    def send(task: str, *args: object) -> str:
        message = sender.send_task(task, args=list(args), kwargs={})
        deadline = time.monotonic() + 60
        while f"[{message.id}] succeeded" not in log.read_text() and time.monotonic() < deadline:
            assert worker.poll() is None, log.read_text()
            time.sleep(0.2)
        assert f"{task}[{message.id}] succeeded" in log.read_text(), log.read_text()
        return log.read_text()

    try:
        yield send
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_a_worker_consumes_a_task_from_the_filesystem_broker(tmp_path, monkeypatch):
    # The worker reads its broker from the settings, here the embedded default under a VAR_DIR of its own, so this
    # holds on the PostgreSQL pass too, where CELERY_BROKER_URL points at Redis.
    with filesystem_worker(tmp_path, monkeypatch) as send:
        send("celery.accumulate", 7)
    assert not list((tmp_path / "broker" / "queue").glob("*.msg"))  # consumed and acknowledged


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the worker process must reach the test database")
@pytest.mark.django_db(transaction=True)
def test_a_worker_on_the_filesystem_broker_anchors_the_audit_head_beat_schedules(tmp_path, monkeypatch, cast):
    anchors = tmp_path / "anchors.jsonl"
    database = connection.settings_dict
    credentials = database["USER"] + (f":{database['PASSWORD']}" if database["PASSWORD"] else "")
    url = f"postgres://{credentials}@{database['HOST'] or 'localhost'}:{database['PORT'] or 5432}/{database['NAME']}"
    with filesystem_worker(tmp_path, monkeypatch, DATABASE_URL=url, AUDIT_ANCHOR_PATH=str(anchors)) as send:
        send("audit.tasks.anchor_audit_head")
    (line,) = anchors.read_text().splitlines()
    head = AuditChainHead.objects.get(pk=1)
    assert json.loads(line)["seq"] == head.seq > 0
    assert json.loads(line)["hash"] == head.hash
