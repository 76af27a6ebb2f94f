"""Domain exceptions every service raises; the API turns them into responses, the console into messages."""

from collections.abc import Mapping, Sequence
from typing import Any


class DomainError(Exception):
    status_code = 409

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


class Conflict(DomainError):
    """The current state forbids the operation, or a replay differs from what was recorded."""

    status_code = 409


class Forbidden(DomainError):
    """The caller may not do this (refusals are audited by the service that raises them)."""

    status_code = 403


class Invalid(DomainError):
    """Bad input: field errors keyed by field name (or `non_field_errors`)."""

    status_code = 400

    def __init__(self, errors: Mapping[str, Sequence[str] | Mapping[str, Any]] | str):
        if isinstance(errors, str):
            errors = {"non_field_errors": [errors]}
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))
