from django.conf import settings
from django.db import models

from policies.models import PolicyVersion


class ActionState(models.TextChoices):
    EXECUTED = "executed"
    ROLLBACK_PENDING = "rollback_pending"
    REVERSED = "reversed"
    PARTIALLY_REVERSED = "partially_reversed"
    REVERSAL_FAILED = "reversal_failed"
    MANUAL_REMEDIATION = "manual_remediation"
    MANUALLY_RESOLVED = "manually_resolved"


_A = ActionState
# An action's state follows its steps in the rollbacks that include it; actions.services.change_action_states
# checks this table under the row lock. A rollback that ends or is cancelled puts its actions back where they were.
ACTION_TRANSITIONS: dict[str, frozenset[str]] = {
    _A.EXECUTED: frozenset({_A.ROLLBACK_PENDING}),
    _A.ROLLBACK_PENDING: frozenset(
        {
            _A.EXECUTED,
            _A.REVERSED,
            _A.PARTIALLY_REVERSED,
            _A.REVERSAL_FAILED,
            _A.MANUAL_REMEDIATION,
            _A.MANUALLY_RESOLVED,
        }
    ),
    _A.REVERSED: frozenset({_A.ROLLBACK_PENDING, _A.MANUALLY_RESOLVED}),
    _A.PARTIALLY_REVERSED: frozenset({_A.ROLLBACK_PENDING, _A.MANUALLY_RESOLVED}),
    _A.REVERSAL_FAILED: frozenset(
        {_A.ROLLBACK_PENDING, _A.REVERSED, _A.PARTIALLY_REVERSED, _A.MANUAL_REMEDIATION, _A.MANUALLY_RESOLVED}
    ),
    _A.MANUAL_REMEDIATION: frozenset({_A.ROLLBACK_PENDING, _A.MANUALLY_RESOLVED}),
    _A.MANUALLY_RESOLVED: frozenset({_A.ROLLBACK_PENDING}),
}


class Reversibility(models.TextChoices):
    FULL = "full"
    PARTIAL = "partial"
    IRREVERSIBLE = "irreversible"


class Action(models.Model):
    """Something an agent did after a human approved it, as its integrator reported it.

    The approval (who, when, context) and the reversibility the policy gave it at recording time are frozen
    here: a later policy cannot rewrite what a reviewer was told. Only `state` changes, and only through
    `actions.services`.
    """

    integrator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="recorded_actions")
    external_id = models.CharField(max_length=255)
    action_type = models.CharField(max_length=100)
    subject = models.CharField(max_length=255)
    payload = models.JSONField(default=dict)
    executed_at = models.DateTimeField()
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approved_actions")
    approved_at = models.DateTimeField()
    approval_context = models.JSONField(default=dict)
    policy_version = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT, related_name="actions")
    reversibility = models.CharField(max_length=16, choices=Reversibility.choices)
    reversal_method = models.CharField(max_length=32, blank=True)
    prerequisites = models.JSONField(default=list)
    side_effects = models.JSONField(default=list)
    window_ends_at = models.DateTimeField(null=True, blank=True)
    amount = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    state = models.CharField(max_length=24, choices=ActionState.choices, default=ActionState.EXECUTED)
    fingerprint = models.CharField(
        max_length=64, help_text="Hash of the body as posted, to tell a replay from a conflict."
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-executed_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["integrator", "external_id"], name="action_external_id_per_integrator")
        ]
        indexes = [
            models.Index(fields=["action_type", "executed_at"], name="action_type_executed"),
            models.Index(fields=["subject"], name="action_subject"),
            models.Index(fields=["state"], name="action_state"),
            models.Index(fields=["executed_at"], name="action_executed"),
        ]

    def __str__(self) -> str:
        return f"{self.action_type} {self.external_id}"


class ActionLink(models.Model):
    """An edge of the cascade graph: `downstream` happened because of `upstream`, so reversing `upstream`
    reaches `downstream`. Edges may form cycles; the cascade stops at them."""

    upstream = models.ForeignKey(Action, on_delete=models.PROTECT, related_name="downstream_links")
    downstream = models.ForeignKey(Action, on_delete=models.PROTECT, related_name="upstream_links")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["upstream", "downstream"], name="action_link_unique"),
            models.CheckConstraint(condition=~models.Q(upstream=models.F("downstream")), name="action_link_not_self"),
        ]

    def __str__(self) -> str:
        return f"{self.upstream_id} -> {self.downstream_id}"
