import binascii
from datetime import timedelta
from hmac import compare_digest
from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.models import AuthToken
from knox.settings import CONSTANTS
from rest_framework import exceptions
from rest_framework.request import Request

from audit.access import REFUSED_WHILE_LOCKED_OUT, count_access_failure
from audit.services import record_event


class AuditedTokenAuthentication(TokenAuthentication):  # type: ignore[misc]  # knox ships no types
    """Knox's hashed, expiring tokens; a refused token is counted for the audit trail (one `auth.failed` event per
    client address and minute, with the count: audit.access).

    Knox also checks every other token of the user for expiry on each request (one more query, and deletes);
    here a request looks at its own token only: `issue_token` and `revoke_tokens` clear out expired ones.
    """

    def authenticate(self, request: Request) -> Any:
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed as exc:
            count_access_failure("auth.failed", request, str(exc.detail))
            raise

    def authenticate_credentials(self, token: bytes) -> Any:
        """Knox's check (the token's key, then its hash compared in constant time) in one query that also reads
        the user's roles: one row per group joined, so the permission checks after it need no query."""
        try:
            text = token.decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        candidates: dict[str, tuple[AuthToken, set[str]]] = {}
        rows = (
            AuthToken.objects.filter(token_key=text[: CONSTANTS.TOKEN_KEY_LENGTH])
            .select_related("user")
            .annotate(role=F("user__groups__name"))
        )
        for row in rows:
            record, roles = candidates.setdefault(row.digest, (row, set()))
            if row.role:
                roles.add(row.role)
        for record, roles in candidates.values():
            if record.expiry is not None and record.expiry < timezone.now():
                record.delete()
                continue
            try:
                digest = hash_token(text)
            except (TypeError, binascii.Error):
                raise exceptions.AuthenticationFailed("Invalid token.") from None
            if compare_digest(digest, record.digest):
                if not record.user.is_active:
                    raise exceptions.AuthenticationFailed("User inactive or deleted.")
                # The cache policies.roles.user_roles reads.
                record.user._rollback_roles = frozenset(roles)
                return record.user, record
        raise exceptions.AuthenticationFailed("Invalid token.")

    def authenticate_header(self, request: Request) -> str:
        return "Token"


def token_max_age() -> timedelta:
    return timedelta(days=settings.TOKEN_MAX_AGE_DAYS)


class LoginThrottleBackend(AxesStandaloneBackend):  # type: ignore[misc]  # nor does django-axes
    """django-axes' lockout check for logins through a page (console, admin). A login without a request (a shell,
    a management command) is no web login: nothing to throttle, so it is let through to the next backend instead
    of failing as axes' own backend would. A login refused because the address is already locked out is marked,
    so the audit only counts it (audit.access)."""

    def authenticate(
        self, request: Any, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any:
        if request is None:
            return None
        try:
            return super().authenticate(request, username, password, **kwargs)
        except AxesBackendPermissionDenied:
            setattr(request, REFUSED_WHILE_LOCKED_OUT, True)
            raise


def issue_token(user: Any, *, expires: timedelta, actor: str) -> tuple[Any, str]:
    """A new token for `user`: (its stored record, the token itself, shown once and stored only as a hash).
    The user's expired tokens are cleared out on the way. ValueError if it would never expire or outlive
    TOKEN_MAX_AGE_DAYS."""
    if expires is None or expires > token_max_age():
        raise ValueError(f"A token must expire within TOKEN_MAX_AGE_DAYS ({settings.TOKEN_MAX_AGE_DAYS} days).")
    with transaction.atomic():
        AuthToken.objects.filter(user=user, expiry__lt=timezone.now()).delete()
        record, token = AuthToken.objects.create(user=user, expiry=expires)
        record_event(
            "token.issued",
            actor=actor,
            data={
                "user": user.get_username(),
                "expires_at": record.expiry.isoformat() if record.expiry else None,
                "token_key": record.token_key[:8],  # enough to tell tokens apart, far too little to use one
            },
        )
    return record, token


def revoke_tokens(user: Any, *, actor: str) -> int:
    """Revoke every token of `user` at once: the next request with any of them gets 401."""
    with transaction.atomic():
        count: int
        count, _ = AuthToken.objects.filter(user=user).delete()
        record_event("token.revoked", actor=actor, data={"user": user.get_username(), "tokens": count})
    return count


# drf-spectacular registers an extension in its untyped __init_subclass__.
class AuditedTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """Documents `Authorization: Token KEY` in the OpenAPI schema."""

    target_class = AuditedTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Token")
