"""What a call to Rollback Console can fail with. Every error carries the HTTP status and the body's detail."""

from typing import Any


class RollbackConsoleError(Exception):
    """The server refused the call, or could not be reached after every retry."""

    def __init__(self, message: str, *, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class InvalidRequest(RollbackConsoleError):
    """400: `errors` maps each field (or a batch item's index) to what is wrong with it."""

    @property
    def errors(self) -> Any:
        return self.body


class Unauthorized(RollbackConsoleError):
    """401: the token is missing, wrong, expired or revoked."""


class Forbidden(RollbackConsoleError):
    """403: the token's user may not do this."""


class NotFound(RollbackConsoleError):
    """404: no such object, or not one this token may see."""


class Conflict(RollbackConsoleError):
    """409: the external id (or Idempotency-Key) was used before with another body, or the state forbids it.
    Never retried: sending the same thing again cannot succeed."""


class PayloadTooLarge(RollbackConsoleError):
    """413: split the batch."""


class ServerUnavailable(RollbackConsoleError):
    """5xx, 429 or no connection, still so after the last retry."""
