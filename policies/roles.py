"""The contract's roles (Django groups with exactly these names) and triggers, and who holds which role."""

from typing import Any

REVIEWER = "reviewer"
VERIFIER = "verifier"
CUSTOMER_SERVICE = "customer_service"
INCIDENT_COMMANDER = "incident_commander"
POLICY_OWNER = "policy_owner"
LEGAL = "legal"
EXECUTIVE = "executive"
INTEGRATOR = "integrator"
AUDITOR = "auditor"

ROLES = (
    REVIEWER,
    VERIFIER,
    CUSTOMER_SERVICE,
    INCIDENT_COMMANDER,
    POLICY_OWNER,
    LEGAL,
    EXECUTIVE,
    INTEGRATOR,
    AUDITOR,
)

TRIGGERS = ("reviewer_error", "customer_request", "incident", "policy_reversal", "regulatory_order")

AUDIENCES = ("customer", "internal", "regulator")


def user_roles(user: Any) -> frozenset[str]:
    """The user's role names (Django groups), read once per user object (token authentication fills the same
    attribute from its own query)."""
    if not getattr(user, "is_authenticated", False):
        return frozenset()
    cached = getattr(user, "_rollback_roles", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        user._rollback_roles = cached
    return cached
