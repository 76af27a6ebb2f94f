"""Refuses NUL characters before any view sees them.

PostgreSQL cannot store NUL (0x00) in text or jsonb, so a NUL that reached a query or a row was a 500. Query
strings, form fields, headers and the path are checked here; JSON bodies in rollback_console.parsers.
"""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import render

NUL = "\x00"
NUL_MESSAGE = "Null characters are not allowed."
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _field_with_nul(request: HttpRequest) -> str | None:
    """The first place a NUL was sent: a query or form field's name, a header's name, or "path"."""
    if NUL in request.path:
        return "path"
    for name, value in request.META.items():
        if name.startswith("HTTP_") and isinstance(value, str) and NUL in value:
            return name[5:].replace("_", "-").title()
    sources = [request.GET]
    # The API's form bodies are left to DRF: reading request.POST here would consume the stream before DRF's
    # parsers see it (a 415 for an unsupported type would turn into an empty body).
    if (
        request.method in ("POST", "PUT", "PATCH")
        and request.content_type in _FORM_TYPES
        and not request.path.startswith("/api/")
    ):
        sources.append(request.POST)
    for source in sources:
        for name, values in source.lists():
            if NUL in name:
                return name.replace(NUL, "\\x00")
            if any(NUL in value for value in values):
                return name
    return None


class RefuseNulCharactersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        field = _field_with_nul(request)
        if field is None:
            return self.get_response(request)
        if request.path.startswith("/api/"):
            return JsonResponse({field: [NUL_MESSAGE]}, status=400)
        return HttpResponseBadRequest(f"{field}: {NUL_MESSAGE}", content_type="text/plain; charset=utf-8")


class ConsolePageNotFoundMiddleware:
    """The console's own "Not found" page with DEBUG on too.

    With DEBUG off, Django answers a 404 through `handler404` (the console's page, JSON under the API). With DEBUG
    on it answers with its yellow technical page instead, which the demo (run with DEBUG=1) showed to people who
    followed a link to a rollback they may not see. This puts the console's page back for every HTML 404 (JSON
    under the API), whatever DEBUG says; a developer reads the URL conf instead.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if settings.DEBUG and response.status_code == 404 and response.get("Content-Type", "").startswith("text/html"):
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": "Not found."}, status=404)  # as handler404 answers
            return render(request, "404.html", status=404)
        return response
