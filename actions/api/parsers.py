"""JSON in and out with orjson: several times faster than the standard library on batches of a thousand actions,
and stricter where it matters here (no NaN or Infinity, no lone surrogates, a depth limit), so bad input ends as a
400 before it can reach the database."""

from decimal import Decimal
from typing import Any

import orjson
from django.utils.functional import Promise
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer


class ORJSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return orjson.loads(stream.read())
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


def _default(value: Any) -> Any:
    if isinstance(value, Decimal | Promise):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class ORJSONRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = None

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if data is None:
            return b""
        return orjson.dumps(data, default=_default)
