"""Receiving what Rollback Console sends: reversal calls, customer notifications and integrator events.

All three are signed the same way: `X-Rollback-Signature: t=UNIX,v1=HEX`, HEX being HMAC-SHA256 with your secret
over `"{t}.{raw body}"`, and the body carries `idempotency_key` (equal to the `Idempotency-Key` header). The
header is not signed, so deduplicate on the body's key: a captured call replayed under a fresh header is still
recognised, and a call replayed later than `tolerance` seconds fails the signature check.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

SIGNATURE_HEADER = "X-Rollback-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_TOLERANCE = 300


def sign(secret: str | bytes, body: bytes, timestamp: int | None = None) -> str:
    """The `X-Rollback-Signature` value Rollback Console would send for `body` (for your tests)."""
    key = secret.encode() if isinstance(secret, str) else secret
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={hmac.new(key, f'{t}.'.encode() + body, hashlib.sha256).hexdigest()}"


def verify_signature(
    secret: str | bytes,
    header: str | None,
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = DEFAULT_TOLERANCE,
) -> bool:
    """Whether `header` signs exactly `body` with `secret`, its timestamp at most `tolerance` seconds old or
    ahead. Several `v1=` values (sent while a secret is rotated) pass if one matches."""
    if not header:
        return False
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            fields.setdefault(name, []).append(value)
    try:
        t = int(fields["t"][0])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = sign(secret, body, timestamp=t).rpartition("v1=")[2]
    return any(hmac.compare_digest(expected, candidate) for candidate in fields.get("v1", []))


class InvalidWebhook(Exception):
    """The call is not one to act on. Answer with `status` (401: signature; 400: body) and `str(error)`."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class DeliveryStore(Protocol):
    """Where answers are kept by idempotency key. Use a database table with the key unique when several
    processes receive webhooks; the in-memory default serves one process."""

    def recall(self, key: str) -> dict[str, Any] | None:
        """The answer kept for `key`, or None if the key was never handled."""

    def keep(self, key: str, answer: dict[str, Any]) -> None:
        """Keep `answer` for `key`; a later delivery with the same key gets it without your handler running."""


class InMemoryDeliveryStore:
    """Keeps the newest `max_keys` answers for `ttl` seconds (a day by default, far longer than the server
    retries a call) in this process."""

    def __init__(self, *, max_keys: int = 100_000, ttl: float = 86_400, clock: Callable[[], float] = time.monotonic):
        self.max_keys, self.ttl, self._clock = max_keys, ttl, clock
        self._answers: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def recall(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            kept = self._answers.get(key)
            if kept is None:
                return None
            if self._clock() - kept[0] > self.ttl:
                del self._answers[key]
                return None
            return kept[1]

    def keep(self, key: str, answer: dict[str, Any]) -> None:
        with self._lock:
            self._answers[key] = (self._clock(), answer)
            self._answers.move_to_end(key)
            while len(self._answers) > self.max_keys:
                self._answers.popitem(last=False)


@dataclass(frozen=True)
class Delivery:
    """A verified call: its JSON `body`, its `idempotency_key`, and what kind it is (`event`: the body's
    `event` for notifications and events, e.g. `rollback.completed`; `phase` for reversal calls)."""

    body: dict[str, Any]
    idempotency_key: str

    @property
    def event(self) -> str | None:
        event = self.body.get("event")
        return event if isinstance(event, str) else None

    @property
    def phase(self) -> str | None:
        phase = self.body.get("phase")
        return phase if isinstance(phase, str) else None


class WebhookReceiver:
    """Verifies and deduplicates Rollback Console's signed calls, whatever web framework receives them.

        receiver = WebhookReceiver(os.environ["SHOP_WEBHOOK_SECRET"])

        def reversals(request):  # your framework's view
            try:
                status, answer = 200, receiver.handle(request.body, request.headers, reverse)
            except InvalidWebhook as error:
                status, answer = error.status, {"status": "failed", "detail": str(error)}
            return JsonResponse(answer, status=status)

    `handle` runs your handler once per idempotency key and gives every later delivery of that key the first
    answer, as the protocol expects (a retried `reverse` must not refund twice, and must still hear "ok").
    """

    def __init__(
        self,
        secret: str | bytes,
        *,
        store: DeliveryStore | None = None,
        tolerance: int = DEFAULT_TOLERANCE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secret:
            raise ValueError("An empty secret would accept anyone's signature.")
        self.secret, self.tolerance, self._clock = secret, tolerance, clock
        self.store: DeliveryStore = store if store is not None else InMemoryDeliveryStore()
        self._key_locks: dict[str, list[Any]] = {}  # key -> [its lock, how many deliveries hold or await it]
        self._locks_lock = threading.Lock()

    def verify(self, body: bytes, headers: Mapping[str, str]) -> Delivery:
        """The verified call, or InvalidWebhook: a missing, wrong or stale signature (401), a body that is not a
        JSON object with an `idempotency_key`, or a header key that differs from the signed one (400)."""
        header = _header(headers, SIGNATURE_HEADER)
        if not verify_signature(self.secret, header, body, now=self._clock(), tolerance=self.tolerance):
            raise InvalidWebhook(f"missing, invalid or stale {SIGNATURE_HEADER}", 401)
        try:
            parsed = json.loads(body)
        except ValueError:
            raise InvalidWebhook("the body is not JSON", 400) from None
        if not isinstance(parsed, dict):
            raise InvalidWebhook("the body is not a JSON object", 400)
        key = parsed.get("idempotency_key")
        if not isinstance(key, str) or not key:
            raise InvalidWebhook("the signed body has no idempotency_key", 400)
        header_key = _header(headers, IDEMPOTENCY_HEADER)
        if header_key is not None and header_key != key:
            raise InvalidWebhook(f"the {IDEMPOTENCY_HEADER} header differs from the signed body's key", 400)
        return Delivery(body=parsed, idempotency_key=key)

    def handle(
        self, body: bytes, headers: Mapping[str, str], handler: Callable[[Delivery], dict[str, Any] | None]
    ) -> dict[str, Any]:
        """Verify, then run `handler` unless this key was handled before; returns the answer to send (200).
        A handler that raises keeps nothing, so the server's retry runs it again."""
        delivery = self.verify(body, headers)
        key = delivery.idempotency_key
        with self._exclusive(key):
            kept = self.store.recall(key)
            if kept is not None:
                return kept
            answer = handler(delivery) or {"status": "ok"}
            self.store.keep(key, answer)
            return answer

    def is_duplicate(self, delivery: Delivery) -> bool:
        """Whether this key was handled before (for receivers that answer on their own)."""
        return self.store.recall(delivery.idempotency_key) is not None

    @contextmanager
    def _exclusive(self, key: str) -> Iterator[None]:
        # Two deliveries of one key at once (a retry racing a slow first try) must not both run the handler. One
        # lock per key in flight, dropped when its last holder leaves, so the map never outgrows the traffic.
        with self._locks_lock:
            entry = self._key_locks.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._locks_lock:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._key_locks[key]


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None
