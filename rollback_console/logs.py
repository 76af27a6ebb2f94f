"""Logs that say which rollback, step or request they are about.

The ids live in context variables: a worker sets them when a task starts (Celery's `task_prerun` signal, from the
ids its message names) and clears them when it ends; the web sets the request's id and path in
`RequestContextMiddleware`. `ContextFilter`, attached to the handler in settings.LOGGING, copies them onto every
record, so any logger's line carries them, ours and the libraries' alike. With `LOG_FORMAT=json` (the default
unless DEBUG; compose sets it) each record is one JSON object (python-json-logger) and the ids are its keys;
with `plain` they follow the message in brackets.
"""

import contextvars
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

from celery.signals import task_postrun, task_prerun
from django.http import HttpRequest, HttpResponse

FIELDS = ("rollback_id", "step_ids", "communication_id", "delivery_id", "task", "task_id", "request_id", "path")
_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("log_context", default=None)

# What the first argument of each of our tasks names (rollbacks.dispatch registers them under these names).
TASK_ARGUMENTS = {
    "rollbacks.tasks.run_rollback": "rollback_id",
    "rollbacks.tasks.send_integrator_events": "rollback_id",
    "rollbacks.tasks.execute_steps": "step_ids",
    "rollbacks.tasks.send_communication": "communication_id",
    "rollbacks.tasks.send_announcement": "delivery_id",
}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def bind(**ids: Any) -> contextvars.Token[dict[str, Any] | None]:
    """Add ids to the current context (a service that learns the rollback of a step may call it)."""
    return _context.set({**(_context.get() or {}), **{key: value for key, value in ids.items() if value is not None}})


def current() -> dict[str, Any]:
    return dict(_context.get() or {})


class ContextFilter(logging.Filter):
    """Puts the current ids on every record (absent ids as None, so a format string never fails), and a `context`
    text for plain formats."""

    def filter(self, record: logging.LogRecord) -> bool:
        ids = _context.get() or {}
        for field in FIELDS:
            if not hasattr(record, field):
                setattr(record, field, ids.get(field))
        shown = " ".join(f"{field}={ids[field]}" for field in FIELDS if ids.get(field) is not None)
        record.context = f" [{shown}]" if shown else ""
        return True


def _task_started(task_id: str | None = None, task: Any = None, args: Any = None, **_: Any) -> None:
    name = getattr(task, "name", None)
    ids: dict[str, Any] = {"task": name, "task_id": task_id}
    argument = TASK_ARGUMENTS.get(str(name))
    if argument and args:
        value = args[0]
        ids[argument] = ",".join(str(v) for v in value) if isinstance(value, list | tuple) else value
    _context.set(ids)


def _task_ended(**_: Any) -> None:
    _context.set(None)


task_prerun.connect(_task_started)
task_postrun.connect(_task_ended)


class RequestContextMiddleware:
    """The request's id (a sane `X-Request-ID` from the proxy, else a new one, echoed back) and path, for every
    line logged while it is served."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        offered = request.headers.get("X-Request-ID", "")
        request_id = offered if _REQUEST_ID.match(offered) else uuid.uuid4().hex
        token = _context.set({"request_id": request_id, "path": request.path})
        try:
            response = self.get_response(request)
        finally:
            _context.reset(token)
        response["X-Request-ID"] = request_id
        return response
