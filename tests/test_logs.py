"""Every log line carries what it is about: the rollback, steps or message a task was given, the request a web
line was logged for; JSON (one object a line) in production, plain in the demo."""

import io
import json
import logging

import pytest
from celery.signals import task_postrun, task_prerun
from django.conf import settings
from django.test import Client

from rollback_console import logs
from rollback_console.celery import app as celery_app
from tests.rollbacks.test_worker_guard import our_tasks


@pytest.fixture
def captured():
    """The root handler's filter and formatter (settings.LOGGING), writing to a buffer."""
    root = logging.getLogger()
    [configured] = [handler for handler in root.handlers if isinstance(handler, logging.StreamHandler)][:1]
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(configured.formatter)
    for log_filter in configured.filters:
        handler.addFilter(log_filter)
    root.addHandler(handler)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)


def lines(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def test_logs_are_json_unless_debug():
    assert ("plain" if settings.DEBUG else "json") == settings.LOG_FORMAT


def test_a_task_s_lines_carry_the_rollback_or_steps_its_message_names(captured):
    task = celery_app.tasks["rollbacks.tasks.execute_steps"]
    task_prerun.send(sender=task, task_id="m-1", task=task, args=([11, 12],), kwargs={})
    logging.getLogger("rollbacks.execution").warning("a step answered 503")
    task_postrun.send(sender=task, task_id="m-1", task=task, args=([11, 12],), kwargs={})
    rollback_task = celery_app.tasks["rollbacks.tasks.run_rollback"]
    task_prerun.send(sender=rollback_task, task_id="m-2", task=rollback_task, args=(7,), kwargs={})
    logging.getLogger("celery.app.trace").info("carrying on")
    task_postrun.send(sender=rollback_task, task_id="m-2", task=rollback_task, args=(7,), kwargs={})
    logging.getLogger("somewhere").info("after the task")

    steps, rollback, after = lines(captured)
    assert (steps["message"], steps["step_ids"], steps["task_id"]) == ("a step answered 503", "11,12", "m-1")
    assert steps["task"] == "rollbacks.tasks.execute_steps" and steps["level"] == "WARNING"
    assert (rollback["rollback_id"], rollback["logger"]) == (7, "celery.app.trace")
    assert after["rollback_id"] is None and after["step_ids"] is None, "a task's ids end with it"


SWEEPS = {"rollbacks.tasks.resume_stalled_rollbacks", "rollbacks.tasks.announce_inbox_items"}  # they name nothing


def test_every_task_that_names_a_rollback_or_steps_is_known_to_the_logs():
    named = {name for name in our_tasks() if name.startswith("rollbacks.tasks.") and name not in SWEEPS}
    assert named == set(logs.TASK_ARGUMENTS)


def test_a_web_request_s_lines_carry_its_id_and_path(captured, monkeypatch):
    def view_logging() -> None:
        logging.getLogger("rollback_console.health").warning("inside the request")

    from rollback_console import health

    monkeypatch.setattr(health, "READINESS_CHECKS", [("database", view_logging)])

    response = Client().get("/readyz", HTTP_X_REQUEST_ID="req-42")

    assert response["X-Request-ID"] == "req-42"
    [line] = [line for line in lines(captured) if line["message"] == "inside the request"]
    assert (line["request_id"], line["path"]) == ("req-42", "/readyz")


def test_an_unusable_request_id_is_replaced():
    response = Client().get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith a newline" * 10)
    assert len(response["X-Request-ID"]) == 32 and "\n" not in response["X-Request-ID"]


def test_the_plain_format_shows_the_ids_after_the_message():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    token = logs.bind(rollback_id=3)
    try:
        logs.ContextFilter().filter(record)
    finally:
        logs._context.reset(token)
    formatter = logging.Formatter(settings.LOGGING["formatters"]["plain"]["format"])
    assert formatter.format(record).endswith("hello [rollback_id=3]")
