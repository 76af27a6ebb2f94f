"""Idempotency-Key on POST /rollbacks/, as payment APIs do it: the first response is kept (at least
IDEMPOTENCY_KEY_TTL) and returned to a retry with the same key and body; the same key with another body is
refused. Two requests racing with one key are settled by the (user, key) unique constraint: the loser's work
is rolled back with its transaction and it answers with the winner's response."""

import hashlib
from collections.abc import Callable
from typing import Any

import orjson
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from rollback_console.errors import Conflict
from rollbacks.models import IdempotencyRecord

MAX_KEY_LENGTH = 255


def fingerprint(body: Any) -> str:
    try:
        encoded = orjson.dumps(body, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except TypeError:
        encoded = repr(body).encode()
    return hashlib.sha256(encoded).hexdigest()


def respond_once(*, user: Any, key: str, body: Any, respond: Callable[[], tuple[int, Any]]) -> tuple[int, Any]:
    """`respond()`'s (status, body), run at most once per (user, key) within the TTL. `respond` runs inside
    this function's transaction: whatever it writes is undone if another request with the key won the race.
    Errors it raises are not kept, so a retry after a 400 runs again."""
    request_hash = fingerprint(body)
    replay = _replay(user, key, request_hash)
    if replay is not None:
        return replay
    try:
        with transaction.atomic():
            status, response = respond()
            IdempotencyRecord.objects.create(
                user=user, key=key, request_hash=request_hash, status_code=status, response=response
            )
    except IntegrityError:
        replay = _replay(user, key, request_hash)
        if replay is None:
            raise
        return replay
    return status, response


def _replay(user: Any, key: str, request_hash: str) -> tuple[int, Any] | None:
    record = IdempotencyRecord.objects.filter(user=user, key=key).first()
    if record is None:
        return None
    if record.created_at < timezone.now() - settings.IDEMPOTENCY_KEY_TTL:
        IdempotencyRecord.objects.filter(pk=record.pk).delete()  # expired: the key may be used afresh
        return None
    if record.request_hash != request_hash:
        raise Conflict("This Idempotency-Key was used with a different request body.")
    return record.status_code, record.response
