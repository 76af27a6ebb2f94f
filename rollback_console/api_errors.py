"""Turns domain exceptions into the contract's error responses and audits refused callers."""

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from audit.access import count_access_failure
from audit.services import actor_name, record_standalone_event
from rollback_console.errors import DomainError, Invalid


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    request = context.get("request")
    if isinstance(exc, Invalid):
        return Response(exc.errors, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DomainError):
        return Response({"detail": exc.message}, status=exc.status_code)
    if isinstance(exc, exceptions.NotAuthenticated) and request is not None:
        # Anyone can send these without limit: counted, one event per client address and minute (audit.access).
        count_access_failure("auth.failed", request, str(exc.detail))
    elif isinstance(exc, exceptions.Throttled) and request is not None:
        actor = actor_name(getattr(request, "user", None))
        count_access_failure("access.throttled", request, f"{actor}: {exc.detail}")
    elif isinstance(exc, exceptions.PermissionDenied) and request is not None:
        record_standalone_event(
            "auth.forbidden",
            actor=actor_name(getattr(request, "user", None)),
            data={"method": request.method, "path": request.path, "reason": str(exc.detail)},
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    return drf_exception_handler(exc, context)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """An address no route matches (`/api/v1/actions/0.5/`): JSON under the API, as the views' own 404s are;
    the console's page everywhere else."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)
