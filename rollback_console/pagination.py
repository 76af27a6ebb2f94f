"""Lists page with `limit` and `offset`; a value that is not a whole number is refused (400 naming it) instead
of being silently replaced by the default, as DRF's own paginator does."""

from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination


class StrictLimitOffsetPagination(LimitOffsetPagination):
    def get_limit(self, request: Any) -> int | None:
        self._check(request, self.limit_query_param)
        return super().get_limit(request)

    def get_offset(self, request: Any) -> int:
        self._check(request, self.offset_query_param)
        return super().get_offset(request)

    @staticmethod
    def _check(request: Any, name: str) -> None:
        values = request.query_params.getlist(name)
        if len(values) > 1:
            raise ValidationError({name: ["Give it once."]})
        if values and not (values[0].isascii() and values[0].isdigit()):
            raise ValidationError({name: ["Must be a whole number, 0 or more."]})
