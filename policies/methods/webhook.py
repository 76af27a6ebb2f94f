"""The contract's reversal webhook: a signed POST to the integrator's `reversal_url`, one per phase."""

import hashlib
import hmac
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, ClassVar

import orjson
from django.conf import settings

from policies.methods.base import PhaseResult, ReversalCall, unknown_keys


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The `X-Rollback-Signature` header value: HMAC-SHA256 over "{t}.{raw body}"."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify_signature(secret: str, header: str, body: bytes, now: int | None = None, tolerance: int = 300) -> bool:
    """Whether an `X-Rollback-Signature` header signs `body` with `secret`, its timestamp at most `tolerance`
    seconds from `now` either way (a stale or future timestamp is refused, so a captured call cannot be replayed)."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if sep:
            fields.setdefault(key, []).append(value)
    try:
        t = int(fields["t"][0])
    except (KeyError, ValueError):
        return False
    current = int(time.time()) if now is None else now
    if abs(current - t) > tolerance:
        return False
    expected = sign(secret, body, timestamp=t).rpartition("v1=")[2]
    # Several v1 values may be sent while a secret is rotated; one matching is enough.
    return any(hmac.compare_digest(expected, candidate) for candidate in fields.get("v1", []))


def integrator_secret(integrator: Mapping[str, Any]) -> str:
    name = integrator["secret_env"]
    secret = os.environ.get(name, "")
    if not secret:
        raise RuntimeError(f"The environment variable {name} (an integrator's webhook secret) is not set.")
    return secret


def post_signed(url: str, payload: Mapping[str, Any], secret: str, idempotency_key: str) -> tuple[int, bytes]:
    """POST a signed JSON body. Returns (status, body); status 0 means no answer (refused, timed out).

    The body repeats the Idempotency-Key as `idempotency_key`: the header is not signed, so a receiver that
    deduplicated on it alone would apply a captured call again under a new key."""
    signed = {**payload, "idempotency_key": idempotency_key}
    body = json.dumps(signed, separators=(",", ":"), default=str).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Idempotency-Key": idempotency_key,
            "X-Rollback-Signature": sign(secret, body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.WEBHOOK_TIMEOUT_SECONDS) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        return 0, str(exc).encode()


class WebhookMethod:
    name: ClassVar[str] = "webhook"

    def validate(self, reversal: Mapping[str, Any], manifest: Mapping[str, Any]) -> list[tuple[str, str]]:
        errors = unknown_keys(reversal, {"method", "integrator", "operation"})
        integrator = reversal.get("integrator")
        integrators = manifest.get("integrators", {})
        if not isinstance(integrator, str):
            errors.append(("integrator", "the key of an [integrators.KEY] table is required"))
        elif integrator not in integrators:
            errors.append(("integrator", f"no [integrators.{integrator}] table declares it"))
        elif not integrators[integrator].get("reversal_url"):
            errors.append(("integrator", f"[integrators.{integrator}] has no reversal_url"))
        if not isinstance(reversal.get("operation"), str) or not reversal.get("operation"):
            errors.append(("operation", "the operation name sent to the integrator is required"))
        return errors

    def run(self, call: ReversalCall) -> PhaseResult:
        assert call.integrator is not None
        payload = {
            "phase": call.phase,
            "step_id": call.step_id,
            "rollback_id": call.rollback_id,
            "trigger": call.trigger,
            "operation": call.operation,
            "action": dict(call.action),
        }
        status, raw = post_signed(
            call.integrator["reversal_url"],
            payload,
            integrator_secret(call.integrator),
            idempotency_key=f"step-{call.step_id}-{call.phase}",
        )
        if status == 0 or status >= 500:
            return PhaseResult(status="failed", detail=f"HTTP {status or 'no answer'}: {raw[:200]!r}", retryable=True)
        if status >= 300:
            return PhaseResult(status="failed", detail=f"HTTP {status}: {raw[:200].decode(errors='replace')}")
        try:
            answer = orjson.loads(raw)  # depth-limited, unlike json.loads
        except orjson.JSONDecodeError:
            return PhaseResult(status="failed", detail="the integrator answered with a body that is not JSON")
        answer_status = answer.get("status") if isinstance(answer, dict) else None
        if answer_status == "ok":
            return PhaseResult(status="ok")
        if answer_status == "unmet" and call.phase == "check":
            return PhaseResult(status="unmet", unmet=tuple(str(u) for u in answer.get("unmet", [])))
        return PhaseResult(status="failed", detail=str(answer.get("detail", answer))[:500])
