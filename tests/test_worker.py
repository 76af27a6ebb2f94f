"""A real Celery worker on the embedded filesystem broker, as `scripts/demo` runs it (no Redis)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings

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


def test_a_worker_consumes_a_task_from_the_filesystem_broker(tmp_path, monkeypatch):
    # The worker reads its broker from the settings, here the embedded default under a VAR_DIR of its own, so this
    # holds on the PostgreSQL pass too, where CELERY_BROKER_URL points at Redis.
    env = {**os.environ, "CELERY_BROKER_URL": "filesystem://", "VAR_DIR": str(tmp_path), "SECRET_KEY": "worker-test"}
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "rollback_console",
                "worker",
                "--pool",
                "solo",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--hostname",
                "test@%h",
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        monkeypatch.setenv("CELERY_BROKER_URL", "filesystem://")  # Celery prefers it to the app's own setting
        sender = Celery(broker="filesystem://")
        sender.conf.broker_transport_options = filesystem_options(tmp_path)
        message = sender.send_task("celery.accumulate", args=[7], kwargs={})
        deadline = time.monotonic() + 60
        while f"[{message.id}] succeeded" not in log.read_text() and time.monotonic() < deadline:
            assert worker.poll() is None, log.read_text()
            time.sleep(0.2)
        assert f"celery.accumulate[{message.id}] succeeded" in log.read_text(), log.read_text()
        assert not list((tmp_path / "broker" / "queue").glob("*.msg"))  # consumed and acknowledged
    finally:
        worker.terminate()
        worker.wait(timeout=30)
