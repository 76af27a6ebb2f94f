"""Actions in the admin: read-only. An action changes only through actions.services (its state follows its
rollbacks), and its approval and reversibility are frozen at recording, so nothing here may edit or delete one."""

from typing import Any, TypeVar

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from actions.models import Action, ActionLink

_M = TypeVar("_M", bound=Model)


class ReadOnlyAdmin(admin.ModelAdmin[_M]):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class UpstreamInline(admin.TabularInline[ActionLink, Action]):
    model = ActionLink
    fk_name = "downstream"
    verbose_name = "caused by"
    verbose_name_plural = "caused by"
    fields = ["upstream", "created_at"]
    readonly_fields = ["upstream", "created_at"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DownstreamInline(UpstreamInline):
    fk_name = "upstream"
    verbose_name = "causes"
    verbose_name_plural = "causes"
    fields = ["downstream", "created_at"]
    readonly_fields = ["downstream", "created_at"]


@admin.register(Action)
class ActionAdmin(ReadOnlyAdmin[Action]):
    list_display = [
        "id",
        "external_id",
        "action_type",
        "subject",
        "integrator",
        "approved_by",
        "state",
        "reversibility",
        "executed_at",
        "window_ends_at",
        "amount",
        "policy_version",
    ]
    list_filter = ["state", "reversibility", "action_type", "integrator", "policy_version", "executed_at"]
    search_fields = ["external_id", "subject", "approved_by__username", "integrator__username"]
    list_select_related = ["integrator", "approved_by", "policy_version"]
    date_hierarchy = "executed_at"
    inlines = [UpstreamInline, DownstreamInline]
    _record = ("integrator", "external_id", "action_type", "subject", "payload", "executed_at", "state")
    _approval = ("approved_by", "approved_at", "approval_context")
    _reversibility = (
        "policy_version",
        "reversibility",
        "reversal_method",
        "prerequisites",
        "side_effects",
        "window_ends_at",
        "amount",
    )
    _recording = ("fingerprint", "recorded_at")
    fieldsets = [
        (None, {"fields": _record}),
        ("Approval", {"fields": _approval}),
        ("Reversibility (frozen from the policy at recording)", {"fields": _reversibility}),
        ("Recording", {"fields": _recording}),
    ]
    readonly_fields = (*_record, *_approval, *_reversibility, *_recording)


@admin.register(ActionLink)
class ActionLinkAdmin(ReadOnlyAdmin[ActionLink]):
    list_display = ["id", "upstream", "downstream", "created_at"]
    list_select_related = ["upstream", "downstream"]
    search_fields = ["upstream__external_id", "downstream__external_id"]
    list_filter = ["created_at"]
