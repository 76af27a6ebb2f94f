"""Rollbacks in the admin, read-only: every state change is an admin action that calls the same service the API
and the console call, so it is checked and audited the same way. Nothing here saves a stateful row itself."""

from collections.abc import Callable
from typing import Any, TypeVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import Model, OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django_celery_beat import admin as beat_admin
from django_celery_beat import models as beat_models

from rollback_console.errors import DomainError
from rollbacks.execution import complete_remediation, confirm_cascade
from rollbacks.models import Communication, RemediationTask, Rollback, SignOff, Step
from rollbacks.services import cancel_rollback

_M = TypeVar("_M", bound=Model)

# A bulk rollback may have thousands of steps: the page shows the first ones; the console and the API show all.
INLINE_ROWS = 200


class ReadOnlyInline(admin.TabularInline[_M, Rollback]):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class StepInline(ReadOnlyInline[Step]):
    model = Step
    fk_name = "rollback"
    verbose_name_plural = f"steps (the first {INLINE_ROWS} by depth)"
    fields = ("action", "depth", "via", "is_loop", "outcome", "phase", "attempts", "detail", "finished_at")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Step]:
        steps = super().get_queryset(request).select_related("action", "via__action")
        first = Step.objects.filter(rollback=OuterRef("rollback")).order_by("depth", "id").values("pk")[:INLINE_ROWS]
        return steps.filter(pk__in=Subquery(first)).order_by("depth", "id")


class SignOffInline(ReadOnlyInline[SignOff]):
    model = SignOff
    fields = ("signer", "role", "decision", "comment", "at")
    readonly_fields = fields


class CommunicationInline(ReadOnlyInline[Communication]):
    model = Communication
    verbose_name_plural = f"communications (the first {INLINE_ROWS})"
    fields = ("audience", "channel", "template", "step", "status", "attempts", "last_error", "sent_at")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Communication]:
        first = Communication.objects.filter(rollback=OuterRef("rollback")).order_by("id").values("pk")[:INLINE_ROWS]
        return super().get_queryset(request).filter(pk__in=Subquery(first)).order_by("id")


def _run_each(
    modeladmin: admin.ModelAdmin[_M], request: HttpRequest, items: QuerySet[_M], call: Callable[[_M], object], done: str
) -> None:
    """Call a service for each selected row; a refusal is reported for that row and the others go on."""
    succeeded = 0
    for item in items:
        try:
            call(item)
        except DomainError as exc:
            modeladmin.message_user(request, f"{item}: {exc.message}", messages.ERROR)
        else:
            succeeded += 1
    if succeeded:
        modeladmin.message_user(request, f"{done}: {succeeded}.", messages.SUCCESS)


@admin.register(Rollback)
class RollbackAdmin(admin.ModelAdmin[Rollback]):
    list_display = ("id", "trigger", "state", "requested_by", "created_at", "planned_actions", "finished_at")
    list_filter = ("state", "trigger", "created_at")
    search_fields = ("=id", "reason", "reference", "requested_by__username")
    list_select_related = ("requested_by",)
    date_hierarchy = "created_at"
    inlines = [SignOffInline, StepInline, CommunicationInline]
    actions = ["cancel", "confirm_cascade_one_level"]

    @admin.display(description="actions")
    def planned_actions(self, rollback: Rollback) -> Any:
        return rollback.plan.get("actions")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in Rollback._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # requests are filed from the console or the API, through request_rollback

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # state moves only through the actions below

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Cancel (until execution starts)", permissions=["view"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[Rollback]) -> None:
        _run_each(self, request, queryset, lambda r: cancel_rollback(r.pk, actor=request.user), "Cancelled")

    @admin.action(description="Confirm the cascade one more level (paused rollbacks)", permissions=["view"])
    def confirm_cascade_one_level(self, request: HttpRequest, queryset: QuerySet[Rollback]) -> None:
        _run_each(self, request, queryset, lambda r: confirm_cascade(r.pk, actor=request.user), "Confirmed")


class RemediationNoteForm(forms.Form):
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 80}), help_text="What was done.")


@admin.register(RemediationTask)
class RemediationTaskAdmin(admin.ModelAdmin[RemediationTask]):
    list_display = ("id", "reason", "step_action", "rollback", "created_at", "done_at", "done_by")
    list_filter = ("reason", ("done_at", admin.EmptyFieldListFilter), "created_at")
    search_fields = ("=id", "step__action__external_id", "step__action__subject", "note")
    list_select_related = ("step__action", "done_by")
    actions = ["mark_done"]

    @admin.display(description="action")
    def step_action(self, task: RemediationTask) -> str:
        return str(task.step.action)

    @admin.display(description="rollback")
    def rollback(self, task: RemediationTask) -> int:
        return task.step.rollback_id

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in RemediationTask._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # execution opens them

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Mark done, with a note", permissions=["view"])
    def mark_done(self, request: HttpRequest, queryset: QuerySet[RemediationTask]) -> HttpResponse | None:
        """Asks for the note first (an intermediate page), then completes each task through the service."""
        form = RemediationNoteForm(request.POST if "note" in request.POST else None)
        if form.is_bound and form.is_valid():
            note = form.cleaned_data["note"]
            _run_each(
                self,
                request,
                queryset,
                lambda task: complete_remediation(task.pk, actor=request.user, note=note),
                "Marked done",
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Mark remediation done",
            "tasks": queryset,
            "form": form,
            "opts": self.model._meta,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/rollbacks/remediation_done.html", context)


# -- the beat schedule (django-celery-beat)
# Whoever edits a periodic task chooses which of our tasks runs with which arguments. The workers refuse work the
# rollback's state does not allow (rollbacks.guard), but the schedule is an operator's tool, not a staff one: only
# superusers see it, whatever model permissions a staff user was given.


class SuperuserOnlyAdmin(admin.ModelAdmin[_M]):
    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)


BEAT_ADMINS: dict[type[Model], type[admin.ModelAdmin[Any]]] = {
    beat_models.PeriodicTask: beat_admin.PeriodicTaskAdmin,
    beat_models.IntervalSchedule: beat_admin.IntervalScheduleAdmin,
    beat_models.CrontabSchedule: beat_admin.CrontabScheduleAdmin,
    beat_models.SolarSchedule: beat_admin.SolarScheduleAdmin,
    beat_models.ClockedSchedule: beat_admin.ClockedScheduleAdmin,
}
for _model, _beat_admin in BEAT_ADMINS.items():
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, type(_beat_admin.__name__, (SuperuserOnlyAdmin, _beat_admin), {}))
