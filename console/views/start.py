"""Where the admin's "View site" lands: the console for people with a role, a page of useful links for an
administrator who holds none (a superuser is not given the console's roles: its rules are about roles, not flags)."""

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from console.access import console_roles


@require_GET
def start(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if console_roles(user):
        return redirect("console:queue")
    if not user.is_staff:
        return redirect("console:queue")  # whose refusal says why, and audits it
    return render(request, "console/start.html")
