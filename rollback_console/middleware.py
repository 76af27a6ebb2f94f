"""Refuses NUL characters before any view sees them.

PostgreSQL cannot store NUL (0x00) in text or jsonb, so a NUL that reached a query or a row was a 500. Query
strings, form fields, headers and the path are checked here; JSON bodies in rollback_console.parsers.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

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
