"""Who an agent is: the same knox token, checked by the same audited authentication as the REST API, and
refusals written to the trail as the API writes them (`auth.failed`, `auth.forbidden`)."""

from typing import Any

from django.http import HttpRequest
from rest_framework import exceptions
from rest_framework.request import Request

from audit.access import count_access_failure
from audit.services import actor_name, record_standalone_event
from rollback_console.authentication import AuditedTokenAuthentication

NO_CREDENTIALS = "Authentication credentials were not provided."


class Refused(Exception):
    """The agent may not do this; `message` is all it is told."""

    def __init__(self, message: str, *, status: int):
        super().__init__(message)
        self.message, self.status = message, status


def token_header(authorization: str | None) -> str | None:
    """`Token KEY` as the API takes it; `Bearer KEY` too, the form most MCP clients send."""
    if not authorization:
        return None
    scheme, _, key = authorization.strip().partition(" ")
    if scheme.lower() == "bearer":
        return f"Token {key.strip()}"
    return authorization


def authenticate(authorization: str | None, *, path: str, client_address: str) -> Any:
    """The user holding the token in `authorization` (`Token KEY` or `Bearer KEY`), or Refused (401).

    Runs the API's own authentication class over a request built from what the agent sent, so a bad, expired or
    revoked token is refused and audited exactly as on `/api/v1/`."""
    django_request = HttpRequest()
    django_request.method = "POST"
    django_request.path = django_request.path_info = path
    django_request.META = {"REMOTE_ADDR": client_address, "REQUEST_METHOD": "POST", "PATH_INFO": path}
    header = token_header(authorization)
    if header is not None:
        django_request.META["HTTP_AUTHORIZATION"] = header
    try:
        result = AuditedTokenAuthentication().authenticate(Request(django_request))
    except exceptions.AuthenticationFailed as exc:
        raise Refused(str(exc.detail), status=401) from None
    if result is None:
        # Counted like the API's: one event per client address and minute, however many calls (audit.access).
        count_access_failure("auth.failed", django_request, NO_CREDENTIALS)
        raise Refused(NO_CREDENTIALS, status=401)
    return result[0]


def refuse(user: Any, tool: str, reason: str) -> Refused:
    """Audit a refused permission as the API does (`auth.forbidden`) and return the refusal to raise."""
    record_standalone_event(
        "auth.forbidden", actor=actor_name(user), data={"method": "MCP", "path": f"mcp:{tool}", "reason": reason}
    )
    return Refused(reason, status=403)
