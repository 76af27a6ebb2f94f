"""What each MCP tool does for a signed-in user, asking the permission checks, selectors and services the REST
API asks, and answering with the API's shapes (the API's representation functions and serializers)."""

from typing import Any

import orjson
from django.conf import settings
from django.http import Http404

from actions import selectors as action_selectors
from actions import services as action_services
from actions.api.serializers import (
    ActionTypeSerializer,
    ReversalPreviewSerializer,
    represent_action,
    represent_action_details,
)
from agents.access import Refused, refuse
from policies.selectors import NoPolicyLoaded, current_policy
from rollback_console.errors import DomainError, Invalid
from rollbacks.api.serializers import RollbackSerializer
from rollbacks.selectors import get_rollback_for

# The API's permission messages (actions.api.views.ReadsActions / RecordsActions), so an agent hears the same.
READING_NEEDS_A_ROLE = "Reading actions needs a role."
ONLY_INTEGRATORS_RECORD = "Only integrators record actions."


def _reads_actions(user: Any, tool: str) -> None:
    if not action_selectors.may_read_actions(user):
        raise refuse(user, tool, READING_NEEDS_A_ROLE)


def _policy() -> tuple[int, Any]:
    try:
        return current_policy()
    except NoPolicyLoaded as exc:
        raise Refused(str(exc), status=409) from None


def action_types(user: Any, name: str | None = None) -> dict[str, Any]:
    _reads_actions(user, "action_types")
    version_id, manifest = _policy()
    types = [ActionTypeSerializer((policy, manifest)).data for policy in action_selectors.action_types(manifest)]
    if name is not None:
        types = [entry for entry in types if entry["name"] == name]
        if not types:
            raise Refused(f"{name!r} is not an action type of the current policy ({manifest.version}).", status=404)
    return {"policy_version": version_id, "policy_label": manifest.version, "action_types": types}


def get_action(user: Any, action_id: int) -> dict[str, Any]:
    _reads_actions(user, "get_action")
    return represent_action_details(action_selectors.get_action_for(user, action_id, details=True))


def preview_reversal(user: Any, action_id: int) -> dict[str, Any]:
    _reads_actions(user, "preview_reversal")
    action = action_selectors.get_action_for(user, action_id)
    try:
        preview = action_selectors.preview_reversal(user, action)
    except NoPolicyLoaded as exc:
        raise Refused(str(exc), status=409) from None
    return dict(ReversalPreviewSerializer(preview).data)


def record_action(user: Any, body: dict[str, Any]) -> dict[str, Any]:
    if not action_selectors.is_integrator(user):
        raise refuse(user, "record_action", ONLY_INTEGRATORS_RECORD)
    if len(orjson.dumps(body, default=str)) > settings.ACTION_BODY_MAX_BYTES:
        raise Refused("The action is larger than 1 MiB.", status=413)
    action, created = action_services.record_action(user, body)
    action_selectors.load_caused_by([action])
    return {"created": created, "action": represent_action(action)}


def get_rollback(user: Any, rollback_id: int) -> dict[str, Any]:
    return dict(RollbackSerializer(get_rollback_for(user, rollback_id)).data)


def refusal_of(exc: Exception) -> Refused | None:
    """The refusal an agent is told for a domain error or a missing object, as the API would answer it."""
    if isinstance(exc, Refused):
        return exc
    if isinstance(exc, Http404):
        return Refused("Not found.", status=404)
    if isinstance(exc, Invalid):
        return Refused(orjson.dumps(exc.errors, default=str).decode(), status=400)
    if isinstance(exc, DomainError):
        return Refused(exc.message, status=exc.status_code)
    return None
