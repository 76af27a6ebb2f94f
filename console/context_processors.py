"""The header every console page shows: who is signed in, their roles, and the pages those roles open."""

from typing import Any

from django.http import HttpRequest

from console.access import console_roles, may_file, may_see_remediation
from policies.roles import user_roles
from rollbacks.metrics import may_read_metrics


def console_header(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    in_console = bool(console_roles(user))
    return {
        "header_roles": sorted(user_roles(user)),
        "nav": {
            "queue": in_console,
            "actions": in_console,
            "bulk": in_console and may_file(user),
            "remediation": in_console and may_see_remediation(user),
            "metrics": in_console and may_read_metrics(user),
            "admin": user.is_staff,
        },
    }
