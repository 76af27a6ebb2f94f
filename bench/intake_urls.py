"""The project's URLs plus POST /bench/bare-actions/: a plain ModelViewSet create of the same Action row, with
none of the product's work (no policy, no replay check, no links, no audit). The floor to compare against."""

from typing import Any

from django.urls import include, path
from rest_framework import mixins, serializers, viewsets
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


router = SimpleRouter()
router.register("bench/bare-actions", BareActionViewSet, basename="bare-action")
urlpatterns = [*project_urlpatterns, path("", include(router.urls))]
