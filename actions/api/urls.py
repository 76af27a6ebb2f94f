from django.urls import path
from rest_framework.routers import SimpleRouter

from actions.api.views import ActionTypeListView, ActionViewSet

router = SimpleRouter()
router.register("actions", ActionViewSet, basename="action")

urlpatterns = [
    path("action-types/", ActionTypeListView.as_view(), name="action-type-list"),
    *router.urls,
]
