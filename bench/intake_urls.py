"""The project's URLs plus the floors to compare against, with none of the product's work (no policy check, no
replay check, no links, no audit):
- POST /bench/bare-actions/: a plain ModelViewSet create of the same Action row;
- POST /bench/bare-actions/batch/: `{"actions": [...]}` turned into Action rows as sent (the approvers looked up in
  one query) and written with one bulk_create."""

from typing import Any

from django.contrib.auth import get_user_model
from django.urls import include, path
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from actions.models import Action
from policies.selectors import current_policy
from rollback_console.urls import urlpatterns as project_urlpatterns


class BareActionSerializer(serializers.ModelSerializer):
    approved_by = serializers.SlugRelatedField(
        slug_field="username", queryset=Action.approved_by.field.related_model.objects.all()
    )
    caused_by = serializers.ListField(child=serializers.CharField(), required=False, write_only=True)

    class Meta:
        model = Action
        fields = [
            "id",
            "external_id",
            "action_type",
            "subject",
            "payload",
            "executed_at",
            "approved_by",
            "approved_at",
            "approval_context",
            "caused_by",
            "state",
            "policy_version",
            "reversibility",
        ]
        read_only_fields = ["state", "policy_version", "reversibility"]

    def create(self, validated_data: dict[str, Any]) -> Action:
        validated_data.pop("caused_by", None)
        return super().create(validated_data)


class BareActionViewSet(mixins.CreateModelMixin, viewsets.GenericViewSet):
    queryset = Action.objects.all()
    serializer_class = BareActionSerializer

    def perform_create(self, serializer: Any) -> None:
        serializer.save(
            integrator=self.request.user,
            policy_version_id=current_policy()[0],
            reversibility="full",
            fingerprint="",
        )


@api_view(["POST"])
def bare_bulk_create(request: Request) -> Response:
    items = request.data["actions"]
    users = {u.username: u for u in get_user_model().objects.filter(username__in={i["approved_by"] for i in items})}
    version_id = current_policy()[0]
    created = Action.objects.bulk_create(
        [
            Action(
                integrator=request.user,
                external_id=item["external_id"],
                action_type=item["action_type"],
                subject=item["subject"],
                payload=item["payload"],
                executed_at=item["executed_at"],
                approved_by=users[item["approved_by"]],
                approved_at=item["approved_at"],
                approval_context=item["approval_context"],
                policy_version_id=version_id,
                reversibility="full",
                fingerprint="",
            )
            for item in items
        ]
    )
    return Response({"created": len(created), "ids": [action.pk for action in created]}, status=status.HTTP_201_CREATED)


router = SimpleRouter()
router.register("bench/bare-actions", BareActionViewSet, basename="bare-action")
urlpatterns = [
    *project_urlpatterns,
    path("bench/bare-actions/batch/", bare_bulk_create),
    path("", include(router.urls)),
]
