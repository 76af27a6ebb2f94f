"""The header every console page shows: who is signed in, their roles, the pages those roles open, and how many
items of each kind wait in their inbox."""

from typing import Any

from django.http import HttpRequest

from console.access import console_roles, may_file, may_see_remediation
from policies.roles import user_roles
from rollbacks.inbox import KINDS, CappedCount, capped_inbox_counts, may_have_inbox
from rollbacks.metrics import may_read_metrics

# The header is narrow: the kinds' short names (the queue's tabs spell them out).
SHORT_KIND_LABELS = {"signoff": "Sign-off", "confirm_cascade": "Confirm", "step": "Steps", "remediation": "Remediation"}


def console_header(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    in_console = bool(console_roles(user))
    has_inbox = in_console and may_have_inbox(user)
    inbox: list[tuple[str, str, CappedCount]] = []
    if has_inbox:
        # The queue page counted them already; any other page asks once (one query, each kind counted up to the
        # cap: "1,000+" beyond it).
        counts = getattr(request, "inbox_counts", None) or capped_inbox_counts(user)
        inbox = [(kind, SHORT_KIND_LABELS[kind], counts[kind]) for kind in KINDS]
    return {
        "header_roles": sorted(user_roles(user)),
        "inbox_nav": inbox,
        "inbox_total": sum((count for _, _, count in inbox), CappedCount(0)),
        "nav": {
            "queue": has_inbox,
            "rollbacks": in_console,
            "actions": in_console,
            "bulk": in_console and may_file(user),
            "remediation": in_console and may_see_remediation(user),
            "metrics": in_console and may_read_metrics(user),
            "admin": user.is_staff,
        },
    }
