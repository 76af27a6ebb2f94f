"""The demo shop's webhook receivers (the signature is the authentication: no session, no CSRF token) and the
page where the shop's people see what the Rollback Console told it."""

import os
import re
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from rest_framework.exceptions import ParseError, ValidationError

from demo_shop.models import Customer, ReceivedEvent
from demo_shop.services import (
    KeyReused,
    ReversalRequest,
    answer_reversal,
    body_digest,
    deliver_notification,
    id_or_none,
    keep_anchor_line,
    receive_event,
)
from policies.methods.webhook import verify_signature
from policies.roles import INTEGRATOR, user_roles
from rollback_console.parsers import loads_json

SECRET_ENV = "SHOP_WEBHOOK_SECRET"


def _refused(status: int, detail: str) -> JsonResponse:
    return JsonResponse({"status": "failed", "detail": detail}, status=status)


def _signed_call(request: HttpRequest) -> tuple[dict[str, Any], str] | JsonResponse:
    """The JSON object and Idempotency-Key of a correctly signed request, or the response refusing it."""
    secret = os.environ.get(SECRET_ENV, "")
    if not secret:
        return _refused(503, f"the shop has no {SECRET_ENV} configured")
    header = request.headers.get("X-Rollback-Signature", "")
    if not verify_signature(secret, header, request.body):
        return _refused(401, "missing, invalid or stale X-Rollback-Signature")
    try:
        body = loads_json(request.body)
    except ParseError as exc:
        return _refused(400, f"the body is not JSON we accept: {exc.detail}")
    if not isinstance(body, dict):
        return _refused(400, "the body must be a JSON object")
    # The header is not signed: the key we deduplicate on is the body's, so a captured call replayed under a
    # fresh header key is still recognised.
    key = _text(body.get("idempotency_key"))
    if key is None or len(key) > 255:
        return _refused(400, "the signed body's idempotency_key is required (at most 255 characters)")
    if request.headers.get("Idempotency-Key", key) != key:
        return _refused(400, "the Idempotency-Key header differs from the signed body's idempotency_key")
    return body, key


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@csrf_exempt
@require_POST
def reversals(request: HttpRequest) -> JsonResponse:
    call = _signed_call(request)
    if isinstance(call, JsonResponse):
        return call
    body, key = call
    action = body.get("action")
    phase, operation = _text(body.get("phase")), _text(body.get("operation"))
    if not isinstance(action, dict) or phase is None or operation is None:
        return _refused(400, "phase, operation and action are required")
    external_id, subject = _text(action.get("external_id")), _text(action.get("subject"))
    if external_id is None or subject is None:
        return _refused(400, "action.external_id and action.subject are required")
    reversal = ReversalRequest(
        phase=phase,
        operation=operation,
        external_id=external_id,
        subject=subject,
        step_id=id_or_none(body.get("step_id")),
        rollback_id=id_or_none(body.get("rollback_id")),
        payload=action["payload"] if isinstance(action.get("payload"), dict) else {},
    )
    try:
        answer = answer_reversal(reversal, idempotency_key=key, digest=body_digest(body))
    except KeyReused as exc:
        return _refused(409, str(exc))
    return JsonResponse(answer)


@csrf_exempt
@require_POST
def notifications(request: HttpRequest) -> JsonResponse:
    call = _signed_call(request)
    if isinstance(call, JsonResponse):
        return call
    body, key = call
    if body.get("event") != "rollback.notification" or not isinstance(body.get("action"), dict):
        return _refused(400, 'expected {"event": "rollback.notification", "action": {...}, ...}')
    try:
        email, created = deliver_notification(body, idempotency_key=key)
    except Customer.DoesNotExist:
        return _refused(422, f"no customer {body['action'].get('subject')!r}")
    return JsonResponse({"status": "ok", "email": email.pk, "duplicate": not created})


ANCHOR_SECRET_ENV = "AUDIT_ANCHOR_SECRET"
_HEX = re.compile(r"[0-9a-f]{64}")


@csrf_exempt
@require_POST
def anchors(request: HttpRequest) -> JsonResponse:
    """The demo's anchor receiver: the second place anchors are kept. A real one runs on another machine (a log
    service, a write-once bucket); here it appends each signed line, once, to a file of its own under var/."""
    secret = os.environ.get(ANCHOR_SECRET_ENV, "")
    if not secret:
        return _refused(503, f"the receiver has no {ANCHOR_SECRET_ENV} configured")
    if not verify_signature(secret, request.headers.get("X-Rollback-Signature", ""), request.body):
        return _refused(401, "missing, invalid or stale X-Rollback-Signature")
    try:
        anchor = loads_json(request.body)
    except (ParseError, ValidationError):
        return _refused(400, "the body is not JSON we accept")
    if not (
        isinstance(anchor, dict)
        and type(anchor.get("seq")) is int
        and isinstance(anchor.get("hash"), str)
        and _HEX.fullmatch(anchor["hash"])
    ):
        return _refused(400, 'expected an anchor line {"seq", "hash", "at"}')
    return JsonResponse({"status": "ok", "duplicate": not keep_anchor_line(request.body)})


@csrf_exempt
@require_POST
def events(request: HttpRequest) -> JsonResponse:
    call = _signed_call(request)
    if isinstance(call, JsonResponse):
        return call
    body, key = call
    event = _text(body.get("event"))
    if event is None or not event.startswith("rollback.") or not isinstance(body.get("rollback"), dict):
        return _refused(400, 'expected {"event": "rollback....", "rollback": {...}, "actions": [...]}')
    received, created = receive_event(body, idempotency_key=key)
    return JsonResponse({"status": "ok", "event": received.pk, "duplicate": not created})


@login_required
@require_GET
def shop_page(request: HttpRequest) -> HttpResponse:
    """The shop's side of the demo: the rollback events it received, newest first. For the shop's integrator
    accounts and the admin; the people of the Rollback Console have their own pages."""
    if not (request.user.is_staff or INTEGRATOR in user_roles(request.user)):
        raise PermissionDenied("The shop's page is for the shop's integrator accounts.")
    return render(request, "demo_shop/events.html", {"events": ReceivedEvent.objects.all()[:200]})
