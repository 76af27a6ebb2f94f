"""`RollbackConsole`: the REST API (`/api/v1/`) with retries that are safe because every write is idempotent."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from rollback_console_client.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    RollbackConsoleError,
    ServerUnavailable,
    Unauthorized,
)

_REFUSALS: dict[int, type[RollbackConsoleError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
}
# Answers that may succeed if sent again: the server was busy, overloaded or restarting.
_RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})


def _time(value: datetime | str) -> str:
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError("Times need a UTC offset: pass an aware datetime (e.g. datetime.now(timezone.utc)).")
    return value.isoformat()


class RollbackConsole:
    """A client for one integrator's (or one person's) token.

    Every call the server can safely see twice is retried on refused connections, timeouts, 5xx and 429, with
    exponential backoff and jitter: recording is idempotent by `external_id`, a batch is all or none, reads change
    nothing, and a customer request carries an `Idempotency-Key`. A 409 is a conflict and never retried.

        with RollbackConsole("https://rollbacks.example.com", token=os.environ["ROLLBACK_CONSOLE_TOKEN"]) as rc:
            action = rc.record_action(external_id="run-42/refund-1", action_type="refund.issue", ...)
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        max_attempts: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1.")
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/api/v1/",
            headers={"Authorization": f"Token {token}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> RollbackConsole:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # Actions

    def record_action(
        self,
        *,
        external_id: str,
        action_type: str,
        subject: str,
        executed_at: datetime | str,
        approved_by: str,
        approved_at: datetime | str,
        payload: Mapping[str, Any] | None = None,
        approval_context: Mapping[str, Any] | None = None,
        caused_by: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Records an action an agent executed after a person approved it; the answer carries its `id`, `state`
        and `reversibility`. Sending the same action again (a retry) returns the same action."""
        body = self.action_body(
            external_id=external_id,
            action_type=action_type,
            subject=subject,
            executed_at=executed_at,
            approved_by=approved_by,
            approved_at=approved_at,
            payload=payload,
            approval_context=approval_context,
            caused_by=caused_by,
        )
        return self._call("POST", "actions/", json=body)  # type: ignore[no-any-return]

    @staticmethod
    def action_body(
        *,
        external_id: str,
        action_type: str,
        subject: str,
        executed_at: datetime | str,
        approved_by: str,
        approved_at: datetime | str,
        payload: Mapping[str, Any] | None = None,
        approval_context: Mapping[str, Any] | None = None,
        caused_by: Sequence[str] = (),
    ) -> dict[str, Any]:
        """One action as the API takes it (for `record_actions`)."""
        return {
            "external_id": external_id,
            "action_type": action_type,
            "subject": subject,
            "payload": dict(payload or {}),
            "executed_at": _time(executed_at),
            "approved_by": approved_by,
            "approved_at": _time(approved_at),
            "approval_context": dict(approval_context or {}),
            "caused_by": list(caused_by),
        }

    def record_actions(self, actions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Records up to 1,000 actions in order, all or none: `{"actions": [...], "created": N, "replayed": M}`.
        A later action may name an earlier one in `caused_by`. Errors name the failing item's index."""
        return self._call("POST", "actions/batch/", json={"actions": [dict(action) for action in actions]})  # type: ignore[no-any-return]

    def get_action(self, action_id: int) -> dict[str, Any]:
        """The action with the rollbacks that include it (`rollbacks`) and the actions it caused (`causes`)."""
        return self._call("GET", f"actions/{int(action_id)}/")  # type: ignore[no-any-return]

    def actions(self, **filters: str) -> Iterator[dict[str, Any]]:
        """Every action this token sees, page after page; filters as the API names them (`action_type`,
        `subject`, `state`, `executed_after`, ...)."""
        return self._pages("actions/", filters)

    def preview_reversal(self, action_id: int) -> dict[str, Any]:
        """What reversing the action would take now: window open or not, the extra sign-offs once it has passed,
        the cascade, prerequisites and side effects. Reads only."""
        return self._call("GET", f"actions/{int(action_id)}/reversal-preview/")  # type: ignore[no-any-return]

    def action_types(self) -> list[dict[str, Any]]:
        """The current policy's action types with their reversibility, window and a one-sentence `summary`
        ("reversible within 30 days; after that an executive must sign off")."""
        return self._call("GET", "action-types/")["results"]  # type: ignore[no-any-return]

    # Rollbacks

    def get_rollback(self, rollback_id: int) -> dict[str, Any]:
        """A rollback's state, its required and given sign-offs (the decisions), steps and communications."""
        return self._call("GET", f"rollbacks/{int(rollback_id)}/")  # type: ignore[no-any-return]

    def rollbacks(self, **filters: str) -> Iterator[dict[str, Any]]:
        """The rollbacks this token may see (`state=`, `trigger=`), newest first, page after page."""
        return self._pages("rollbacks/", filters)

    def request_customer_rollback(
        self,
        actions: Sequence[int],
        reason: str,
        *,
        idempotency_key: str | None = None,
        max_cascade_depth: int | None = None,
    ) -> dict[str, Any]:
        """Files a `customer_request` rollback of `actions` (ids) on a customer's behalf. The request carries an
        `Idempotency-Key` (a new one unless given), so a retry never files it twice; pass your own key (say, the
        customer's ticket) to make retries across processes safe too."""
        body: dict[str, Any] = {"trigger": "customer_request", "reason": reason, "actions": [int(a) for a in actions]}
        if max_cascade_depth is not None:
            body["max_cascade_depth"] = max_cascade_depth
        key = idempotency_key or f"customer-request-{uuid.uuid4()}"
        return self._call("POST", "rollbacks/", json=body, headers={"Idempotency-Key": key})  # type: ignore[no-any-return]

    # The wire

    def _pages(self, path: str, filters: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        page = self._call("GET", path, params=dict(filters))
        while True:
            yield from page["results"]
            if not page.get("next"):
                return
            page = self._call("GET", page["next"])

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        for attempt in range(1, self.max_attempts + 1):
            last = attempt == self.max_attempts
            try:
                response = self._http.request(method, path, json=json, params=params, headers=headers)
            except httpx.TransportError as exc:
                if last:
                    raise ServerUnavailable(f"{method} {path}: no answer after {attempt} attempts ({exc!r})") from exc
                self._sleep(self._delay(attempt, None))
                continue
            if response.status_code in _RETRIED_STATUSES and not last:
                self._sleep(self._delay(attempt, response.headers.get("Retry-After")))
                continue
            return self._answer(method, path, response)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after is not None and retry_after.isdigit():
            return min(float(retry_after), self.max_backoff)
        ceiling = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)  # jitter: many agents retrying at once do not retry in step

    @staticmethod
    def _answer(method: str, path: str, response: httpx.Response) -> Any:
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.is_success:
            return body
        detail = body.get("detail", body) if isinstance(body, dict) else body
        error = _REFUSALS.get(response.status_code)
        if error is None:
            retried = response.status_code >= 500 or response.status_code == 429
            error = ServerUnavailable if retried else RollbackConsoleError
        raise error(f"{method} {path}: {response.status_code} {detail}", status=response.status_code, body=body)
