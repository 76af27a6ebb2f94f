"""The trail in Django admin: strictly read-only, with the chain's verification a click away (it reads the whole
trail, seconds at a million events, so the list does not run it on every page)."""

from typing import Any, TypeVar

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path

from audit.models import AnchorDelivery, AuditCheckpoint, AuditEvent
from audit.verification import verify_chain

_M = TypeVar("_M", bound=Model)


class _ReadOnly(admin.ModelAdmin[_M]):
    """The audit app's tables are shown, never edited, in admin."""

    actions = None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(_ReadOnly[AuditEvent]):
    list_display = ("seq", "at", "actor", "kind", "action_id", "rollback_id", "short_hash")
    list_filter = ("kind",)
    search_fields = ("kind", "actor")
    ordering = ("-seq",)
    show_full_result_count = False  # counting a long trail twice per page is the slowest part of the page
    readonly_fields = ("seq", "at", "actor", "kind", "action_id", "rollback_id", "data", "prev_hash", "hash")

    @admin.display(description="hash")
    def short_hash(self, event: AuditEvent) -> str:
        return f"{event.hash[:12]}…"

    def get_urls(self) -> list[URLPattern]:
        verify = self.admin_site.admin_view(self.verify_view)
        return [path("verify/", verify, name="audit_auditevent_verify"), *super().get_urls()]

    def verify_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Audit chain verification",
            "verification": verify_chain().as_dict(),
        }
        return TemplateResponse(request, "admin/audit/auditevent/verify.html", context)


@admin.register(AnchorDelivery)
class AnchorDeliveryAdmin(_ReadOnly[AnchorDelivery]):
    """Whether AUDIT_ANCHOR_URL takes the anchors: a pending row with attempts says the receiver is failing."""

    list_display = ("seq", "created_at", "delivered_at", "attempts", "last_error")
    list_filter = (("delivered_at", admin.EmptyFieldListFilter),)
    readonly_fields = ("seq", "hash", "line", "created_at", "attempts", "delivered_at", "last_error")


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(_ReadOnly[AuditCheckpoint]):
    list_display = ("seq", "verified_at", "full", "hash")
    readonly_fields = ("seq", "hash", "verified_at", "full")
