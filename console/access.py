"""Who may open which console page. The services decide who may *do* what; these checks only keep people away
from pages that have nothing for them, and say why."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from audit.services import actor_name, record_standalone_event
from policies.roles import INTEGRATOR, user_roles
from policies.selectors import NoPolicyLoaded, current_policy
from rollbacks.rules import oversees_rollbacks

View = Callable[..., HttpResponse]


def requestable_triggers(user: Any) -> list[str]:
    """The triggers this person may file under the current policy, in the manifest's order."""
    try:
        manifest = current_policy()[1]
    except NoPolicyLoaded:
        return []
    roles = user_roles(user) - {INTEGRATOR}
    return [name for name, trigger in manifest.triggers.items() if roles & set(trigger.requested_by)]


def console_roles(user: Any) -> frozenset[str]:
    """The roles that give a person something to do in the console; integrators are service accounts."""
    return user_roles(user) - {INTEGRATOR}


def _refuse(request: HttpRequest, reason: str) -> None:
    # Refusals are audited like the API's, so a trail shows who tried what.
    record_standalone_event(
        "auth.forbidden",
        actor=actor_name(request.user),
        data={"method": request.method, "path": request.path, "reason": reason},
    )
    raise PermissionDenied(reason)


def console_page(check: Callable[[Any], bool] | None = None, *, reason: str = "") -> Callable[[View], View]:
    """Sign-in first, then a role that belongs in the console, then the page's own check (403 with `reason`)."""

    def decorate(view: View) -> View:
        @wraps(view)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user = request.user
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not console_roles(user):
                if INTEGRATOR in user_roles(user):
                    _refuse(
                        request, "Integrator accounts are service accounts: they use the REST API, not the console."
                    )
                _refuse(request, "You hold no role in Rollback Console. Ask an operator to add you to a group.")
            if check is not None and not check(user):
                _refuse(request, reason)
            return view(request, *args, **kwargs)

        return guarded

    return decorate


def may_file(user: Any) -> bool:
    return bool(requestable_triggers(user))


def may_see_remediation(user: Any) -> bool:
    return oversees_rollbacks(user)
