"""/api/v1/actions/ and /api/v1/action-types/: thin adapters over actions.services and actions.selectors."""

from typing import Any

from django.conf import settings
from django.db.models.query import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, status, viewsets
from rest_framework.decorators import action as route
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from actions import selectors, services
from actions.api.serializers import (
    ActionDetailSerializer,
    ActionInputSerializer,
    ActionSerializer,
    ActionTypeListSerializer,
    ActionTypeSerializer,
    BatchInputSerializer,
    BatchResultSerializer,
    ErrorSerializer,
    LinksInputSerializer,
    ReversalPreviewSerializer,
    represent_action,
)
from actions.models import Action
from policies.selectors import NoPolicyLoaded, current_policy
from rollback_console.errors import Conflict, Invalid
from rollback_console.pagination import StrictLimitOffsetPagination
from rollback_console.parsers import BodyTooLarge, ORJSONParser, ORJSONRenderer

_ERROR = OpenApiResponse(ErrorSerializer)
_FIELD_ERRORS = OpenApiResponse(OpenApiTypes.OBJECT, description="Field errors: {field: [messages]}.")
_READ_ERRORS = {401: _ERROR, 403: _ERROR, 404: _ERROR}
_WRITE_ERRORS = {400: _FIELD_ERRORS, 401: _ERROR, 403: _ERROR, 409: _ERROR, 413: _ERROR}


class ActionPagination(StrictLimitOffsetPagination):
    max_limit = 1000


class ReadsActions(BasePermission):
    message = "Reading actions needs a role."

    def has_permission(self, request: Request, view: Any) -> bool:
        return selectors.may_read_actions(request.user)


class RecordsActions(BasePermission):
    message = "Only integrators record actions."

    def has_permission(self, request: Request, view: Any) -> bool:
        return selectors.is_integrator(request.user)


def _body_limit(request: Request, limit: int, hint: str) -> None:
    """Refuse an oversized body from its Content-Length, before a byte of it is read or parsed."""
    header = request.META.get("CONTENT_LENGTH") or "0"
    try:
        length = int(header)
    except ValueError:
        raise exceptions.ParseError("Content-Length is not a number.") from None
    if length > limit:
        raise BodyTooLarge(f"The body is {length:,} bytes; this endpoint accepts at most {limit:,} bytes. {hint}")


def _sent_causes(item: Any) -> list[str]:
    """A newly recorded action's links are exactly the `caused_by` it was sent with (the service refuses
    anything else), so its answer needs no query for them."""
    return list(dict.fromkeys(item.get("caused_by") or []))


def _object_body(request: Request, fields: tuple[str, ...]) -> dict[str, Any]:
    data = request.data
    if not isinstance(data, dict):
        raise Invalid({"non_field_errors": ["Expected a JSON object."]})
    unknown = {str(key): ["Unknown field."] for key in data if key not in fields}
    missing = {key: ["This field is required."] for key in fields if key not in data}
    if unknown or missing:
        raise Invalid({**missing, **unknown})
    return data


@extend_schema_view(
    list=extend_schema(
        summary="List actions",
        description="Integrators see the actions they recorded; every other role sees all of them.",
        responses={200: ActionSerializer(many=True), 400: _FIELD_ERRORS, 401: _ERROR, 403: _ERROR},
    ),
    retrieve=extend_schema(
        summary="An action, with the actions it caused and the rollbacks that include it",
        responses={200: ActionDetailSerializer, **_READ_ERRORS},
    ),
)
class ActionViewSet(viewsets.GenericViewSet[Action]):
    parser_classes = [ORJSONParser]
    renderer_classes = [ORJSONRenderer]
    filter_backends = [DjangoFilterBackend]
    filterset_class = selectors.ActionFilter
    pagination_class = ActionPagination
    serializer_class = ActionSerializer
    queryset = Action.objects.none()  # for the schema; get_queryset is what runs

    def get_permissions(self) -> list[BasePermission]:
        if self.action in ("create", "batch", "links"):
            return [IsAuthenticated(), RecordsActions()]
        return [IsAuthenticated(), ReadsActions()]

    def get_queryset(self) -> QuerySet[Action]:
        return selectors.with_links(selectors.actions_visible_to(self.request.user))

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authentication and permissions first: 401/403 before 413
        if self.action == "create":
            _body_limit(request, settings.ACTION_BODY_MAX_BYTES, "That is 1 MiB for one action.")
        elif self.action == "batch":
            _body_limit(request, settings.BATCH_BODY_MAX_BYTES, "That is 16 MiB for a batch: split it.")
        elif self.action == "links":
            _body_limit(request, settings.ACTION_BODY_MAX_BYTES, "Send fewer links at once.")

    def list(self, request: Request) -> Response:
        actions = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(actions)
        return self.get_paginated_response([represent_action(action) for action in page or []])

    def retrieve(self, request: Request, pk: str) -> Response:
        action = selectors.get_action_for(request.user, pk, details=True)
        return Response(ActionDetailSerializer(action).data)

    @extend_schema(
        summary="Record an action",
        description=(
            "201 when recorded; 200 with the same action when this body was recorded before under its "
            "external_id; 409 when that external_id was recorded with a different body (nothing changes). "
            "The body may be at most 1 MiB (413)."
        ),
        request=ActionInputSerializer,
        responses={201: ActionSerializer, 200: ActionSerializer, **_WRITE_ERRORS},
    )
    def create(self, request: Request) -> Response:
        action, created = services.record_action(request.user, request.data)
        if created:
            return Response(
                represent_action(action, caused_by=_sent_causes(request.data)), status=status.HTTP_201_CREATED
            )
        selectors.load_caused_by([action])
        return Response(represent_action(action))

    @extend_schema(
        summary="Record up to 1,000 actions, all or none",
        description=(
            "In order: a later action may name an earlier one in caused_by. Errors are keyed by the failing "
            'item\'s index: {"actions": {"3": {"approved_by": ["..."]}}}. The body may be at most 16 MiB.'
        ),
        request=BatchInputSerializer,
        responses={201: BatchResultSerializer, 200: BatchResultSerializer, **_WRITE_ERRORS},
    )
    @route(detail=False, methods=["post"])
    def batch(self, request: Request) -> Response:
        items = _object_body(request, ("actions",))["actions"]
        if isinstance(items, list) and len(items) > settings.BATCH_MAX_ACTIONS:
            raise Invalid({"actions": [f"Send at most {settings.BATCH_MAX_ACTIONS:,} actions at once."]})
        results = services.record_actions(request.user, items)
        selectors.load_caused_by([action for action, created in results if not created])
        created = sum(1 for _, was_created in results if was_created)
        body = {
            "actions": [
                represent_action(action, caused_by=_sent_causes(item) if was_created else None)
                for (action, was_created), item in zip(results, items, strict=True)
            ],
            "created": created,
            "replayed": len(results) - created,
        }
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(
        summary="Record actions this one caused, learned after the fact",
        description="Links may close a cycle; a link that exists already is no error.",
        request=LinksInputSerializer,
        responses={200: ActionDetailSerializer, **_WRITE_ERRORS, 404: _ERROR},
    )
    @route(detail=True, methods=["post"])
    def links(self, request: Request, pk: str) -> Response:
        action = selectors.get_action_for(request.user, pk)
        if action.integrator_id != request.user.pk:
            raise exceptions.PermissionDenied("Only the integrator that recorded an action links it.")
        causes = _object_body(request, ("causes",))["causes"]
        services.add_links(action, causes, actor=request.user.get_username())
        return Response(ActionDetailSerializer(selectors.get_action_for(request.user, pk, details=True)).data)

    @extend_schema(
        summary="What reversing this action would take",
        description=(
            "The reversal window, the extra sign-offs once it has passed (the action's or a cascaded action's), "
            "and the cascade to the graph's end with each downstream action's depth, prerequisites and side "
            "effects, planned with the current policy. Reads only."
        ),
        responses={200: ReversalPreviewSerializer, **_READ_ERRORS, 409: _ERROR},
    )
    @route(detail=True, methods=["get"], url_path="reversal-preview")
    def reversal_preview(self, request: Request, pk: str) -> Response:
        action = selectors.get_action_for(request.user, pk)
        try:
            preview = selectors.preview_reversal(request.user, action)
        except NoPolicyLoaded as exc:
            raise Conflict(str(exc)) from None
        return Response(ReversalPreviewSerializer(preview).data)


class ActionTypeListView(APIView):
    permission_classes = [IsAuthenticated, ReadsActions]
    renderer_classes = [ORJSONRenderer]

    @extend_schema(
        summary="The current policy's action types and what reversing each would cost",
        responses={200: ActionTypeListSerializer, 401: _ERROR, 403: _ERROR, 409: _ERROR},
    )
    def get(self, request: Request) -> Response:
        try:
            version_id, manifest = current_policy()
        except NoPolicyLoaded as exc:
            raise Conflict(str(exc)) from None
        results = [ActionTypeSerializer((policy, manifest)).data for policy in selectors.action_types(manifest)]
        return Response(
            {
                "count": len(results),
                "next": None,
                "previous": None,
                "policy_version": version_id,
                "policy_label": manifest.version,
                "results": results,
            }
        )
