from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from rollbacks.api.inbox import InboxView
from rollbacks.api.metrics import MetricsView

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("", include("actions.api.urls")),
    path("", include("rollbacks.api.urls")),
    path("metrics/", MetricsView.as_view(), name="metrics"),
    path("inbox/", InboxView.as_view(), name="inbox"),
    path("audit/", include("audit.api.urls")),
]
