"""The contract's roles (Django groups with exactly these names) and triggers."""

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
