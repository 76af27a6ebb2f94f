"""Policy versions in the admin: read-only history, a manifest upload that lists every error by key path, and
"make current". Both writes go through policies.services, so they are validated and audited like the command."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from audit.services import actor_name
from policies.manifest import ManifestError
from policies.models import PolicyActivation, PolicyVersion
from policies.selectors import NoPolicyLoaded, current_policy
from policies.services import activate_policy, load_policy

MAX_MANIFEST_BYTES = 1024 * 1024


class ManifestUploadForm(forms.Form):
    file = forms.FileField(required=False, help_text="A TOML policy manifest.")
    text = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 18, "cols": 100}), label="Or paste it")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        upload = data.get("file")
        if upload is not None:
            if upload.size > MAX_MANIFEST_BYTES:
                raise forms.ValidationError("A manifest is at most 1 MiB.")
            try:
                data["text"] = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                raise forms.ValidationError("The file is not UTF-8 text.") from None
        if not data.get("text", "").strip():
            raise forms.ValidationError("Choose a file or paste the manifest.")
        return data


def split_error(error: str) -> tuple[str, str]:
    """'triggers.incident.signoffs: at least one sign-off is required' -> (key path, message)."""
    path, _, message = error.partition(": ")
    return (path, message) if message else ("", error)


@admin.register(PolicyVersion)
class PolicyVersionAdmin(admin.ModelAdmin[PolicyVersion]):
    list_display = ("label", "short_hash", "is_current", "loaded_at", "loaded_by")
    list_filter = ("loaded_by",)
    search_fields = ("label", "content_hash")
    readonly_fields = ("label", "content_hash", "loaded_at", "loaded_by", "source")
    exclude = ("manifest",)
    actions = ["make_current"]

    @admin.display(description="hash")
    def short_hash(self, version: PolicyVersion) -> str:
        return version.content_hash[:12]

    @admin.display(boolean=True, description="current")
    def is_current(self, version: PolicyVersion) -> bool:
        return version.pk == self._current_id

    def get_queryset(self, request: HttpRequest) -> QuerySet[PolicyVersion]:
        try:
            self._current_id: int | None = current_policy()[0]
        except NoPolicyLoaded:
            self._current_id = None
        return super().get_queryset(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # versions are immutable

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # actions point at the version they were recorded under

    @admin.action(description="Make the selected version current", permissions=["add"])
    def make_current(self, request: HttpRequest, queryset: QuerySet[PolicyVersion]) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to make current.", messages.ERROR)
            return
        version = queryset.get()
        activate_policy(version, actor=actor_name(request.user))
        self.message_user(request, f"{version} is now the current policy.", messages.SUCCESS)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> HttpResponse:
        """Loading a manifest replaces the model form: validate, store, make current, or list every error."""
        if not self.has_add_permission(request):
            return super().add_view(request, form_url, extra_context)
        errors: list[tuple[str, str]] = []
        if request.method == "POST":
            form = ManifestUploadForm(request.POST, request.FILES)
            if form.is_valid():
                try:
                    result = load_policy(form.cleaned_data["text"], actor=actor_name(request.user))
                except ManifestError as exc:
                    errors = [split_error(error) for error in exc.errors]
                else:
                    if result.created:
                        note = f"Loaded {result.version} and made it current."
                    elif result.activated:
                        note = f"{result.version} was already loaded; it is current again."
                    else:
                        note = f"{result.version} is already the current policy; nothing changed."
                    self.message_user(request, note, messages.SUCCESS)
                    return HttpResponseRedirect(reverse("admin:policies_policyversion_changelist"))
        else:
            form = ManifestUploadForm()
        context = {
            **self.admin_site.each_context(request),
            "title": "Load a policy manifest",
            "form": form,
            "manifest_errors": errors,
            "opts": self.model._meta,
            "has_view_permission": self.has_view_permission(request),
        }
        return TemplateResponse(request, "admin/policies/upload_manifest.html", context, status=400 if errors else 200)


@admin.register(PolicyActivation)
class PolicyActivationAdmin(admin.ModelAdmin[PolicyActivation]):
    list_display = ("version", "activated_at", "activated_by")
    list_filter = ("activated_by",)
    search_fields = ("version__label", "version__content_hash", "activated_by")
    list_select_related = ("version",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # "make current" on a version is how a policy becomes current

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
