"""Integrator tokens in the admin: issued (the key is shown once, never stored) and revoked, both audited.

Knox registers its own AuthToken admin, which neither audits nor limits who gets a token; this one replaces it.
"""

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from knox.models import AuthToken

from audit.services import actor_name
from policies.manifest import parse_duration
from policies.roles import INTEGRATOR
from rollback_console.authentication import issue_token, revoke_tokens, token_max_age

admin.site.unregister(AuthToken)
# "View site": the console for role holders, a page of useful links for an administrator without a role (not a 403).
admin.site.site_url = "/console/start/"


class IssueTokenForm(forms.Form):
    user = forms.ModelChoiceField(queryset=User.objects.none(), help_text="An integrator service account.")
    expires = forms.CharField(initial="90d", help_text="How long it lasts: 12h, 30d, 90d …")

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        user = self.fields["user"]
        assert isinstance(user, forms.ModelChoiceField)
        user.queryset = User.objects.filter(groups__name=INTEGRATOR, is_active=True).order_by("username")

    def clean_expires(self) -> timedelta:
        try:
            ttl = parse_duration(self.cleaned_data["expires"].strip(), limit=token_max_age())
        except ValueError as exc:
            raise forms.ValidationError(f"{exc} (TOKEN_MAX_AGE_DAYS)") from None
        if ttl <= timedelta(0):
            raise forms.ValidationError("A token must last some time.")
        return ttl


@admin.register(AuthToken)
class IntegratorTokenAdmin(admin.ModelAdmin[AuthToken]):
    list_display = ("token_key", "user", "created", "expiry")
    list_filter = ("created", "expiry")
    search_fields = ("token_key", "user__username")
    list_select_related = ("user",)
    fields = ("token_key", "user", "created", "expiry")
    readonly_fields = fields
    actions = ["revoke"]

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        found = super().get_actions(request)
        found.pop("delete_selected", None)  # revoking is auditable; the generic delete is not
        return found

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Revoke every token of the selected tokens' users now", permissions=["view"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[AuthToken]) -> None:
        if not request.user.has_perm("knox.delete_authtoken"):
            self.message_user(request, "You may not revoke tokens.", messages.ERROR)
            return
        users = User.objects.filter(pk__in=queryset.values("user_id")).order_by("username")
        # A leaked key cannot be told from its siblings by the integrator, so revocation is per account,
        # as the revoke_tokens command does it.
        count = sum(revoke_tokens(user, actor=actor_name(request.user)) for user in users)
        self.message_user(request, f"Revoked {count} token{'s' if count != 1 else ''}.", messages.SUCCESS)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> HttpResponse:
        if not self.has_add_permission(request):
            return super().add_view(request, form_url, extra_context)
        key = None
        if request.method == "POST":
            form = IssueTokenForm(request.POST)
            if form.is_valid():
                _, key = issue_token(
                    form.cleaned_data["user"], expires=form.cleaned_data["expires"], actor=actor_name(request.user)
                )
        else:
            form = IssueTokenForm()
        context = {
            **self.admin_site.each_context(request),
            "title": "Issue an integrator token",
            "form": form,
            "key": key,
            "opts": self.model._meta,
            "changelist": reverse("admin:knox_authtoken_changelist"),
        }
        if request.method == "POST" and key is None:
            return TemplateResponse(request, "admin/knox/issue_token.html", context, status=400)
        return TemplateResponse(request, "admin/knox/issue_token.html", context)

    def response_post_save_add(self, request: HttpRequest, obj: Any) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:knox_authtoken_changelist"))
