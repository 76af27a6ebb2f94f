from typing import Any

from knox.auth import TokenAuthentication
from rest_framework import exceptions
from rest_framework.request import Request

from audit.services import record_standalone_event


class AuditedTokenAuthentication(TokenAuthentication):
    """Knox's hashed, expiring tokens; a refused token is written to the audit trail."""

    def authenticate(self, request: Request) -> Any:
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed as exc:
            record_standalone_event(
                "auth.failed",
                actor="anonymous",
                data={"method": request.method, "path": request.path, "reason": str(exc.detail)},
            )
            raise

    def authenticate_header(self, request: Request) -> str:
        return "Token"
