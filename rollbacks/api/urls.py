from django.urls import path
from rest_framework.routers import SimpleRouter

from rollbacks.api.transitions import ConfirmCascadeView, ResolveStepView, RetryStepView
from rollbacks.api.views import RollbackViewSet

router = SimpleRouter()
router.register("rollbacks", RollbackViewSet, basename="rollback")

urlpatterns = [
    *router.urls,
    path("rollbacks/<int:pk>/confirm-cascade/", ConfirmCascadeView.as_view(), name="rollback-confirm-cascade"),
    path("rollbacks/<int:pk>/steps/<int:step_id>/retry/", RetryStepView.as_view(), name="rollback-step-retry"),
    path("rollbacks/<int:pk>/steps/<int:step_id>/resolve/", ResolveStepView.as_view(), name="rollback-step-resolve"),
]
