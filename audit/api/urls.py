from django.urls import path

from audit.api.views import AuditEventListView, AuditVerifyView

urlpatterns = [
    path("events/", AuditEventListView.as_view(), name="audit-event-list"),
    path("verify/", AuditVerifyView.as_view(), name="audit-verify"),
]
