"""The trail in Django admin: strictly read-only, with the chain's verification at the top of the list."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from audit.models import AuditEvent
from audit.verification import verify_chain


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("seq", "at", "actor", "kind", "action_id", "rollback_id", "short_hash")
    list_filter = ("kind",)
    search_fields = ("kind", "actor")
    ordering = ("-seq",)
    actions = None
    show_full_result_count = False  # counting a long trail twice per page is the slowest part of the page
    readonly_fields = ("seq", "at", "actor", "kind", "action_id", "rollback_id", "data", "prev_hash", "hash")

    @admin.display(description="hash")
    def short_hash(self, event: AuditEvent) -> str:
        return f"{event.hash[:12]}…"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        context = {**(extra_context or {}), "verification": verify_chain().as_dict()}
        return super().changelist_view(request, extra_context=context)
