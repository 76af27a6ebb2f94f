from django.db import models


class AuditEvent(models.Model):
    """One entry of the append-only, hash-chained audit trail.

    Nothing but `audit.services.record_event(s)` writes this table, and the database refuses UPDATE, DELETE
    and TRUNCATE on it. `hash` is SHA-256 over the event's canonical JSON, which includes `prev_hash`, so any
    change to a stored row breaks the chain at that row's `seq`. Actors and descriptions are frozen as text.

    Event kinds (stable names, grouped by domain):
    - policy.loaded, policy.activated
    - action.recorded, action.linked, action.state_changed
    - auth.failed, auth.forbidden
    - rollback.requested, rollback.refused, rollback.signoff, rollback.signoff_refused, rollback.authorized,
      rollback.rejected, rollback.cancelled, rollback.executing, rollback.paused, rollback.cascade_confirmed,
      rollback.resumed,
      rollback.communicating, rollback.completed, rollback.partially_completed, rollback.failed
    - rollback.step.attempt, rollback.step.reversed, rollback.step.already_reversed,
      rollback.step.not_reversible, rollback.step.prerequisites_unmet, rollback.step.failed,
      rollback.step.compensation_failed, rollback.step.loop_stopped, rollback.step.awaiting_confirmation,
      rollback.step.retried, rollback.step.resolved, rollback.step.confirmed
    - rollback.step.refused, rollback.communication.refused, rollback.run_refused (a worker refused a message)
    - communication.sent, communication.failed, communication.attempt
    - integrator_event.sent, integrator_event.attempt, integrator_event.failed (an integrator told of a decision)
    - remediation.opened, remediation.done
    - token.issued, token.revoked
    """

    seq = models.BigIntegerField(primary_key=True)
    at = models.DateTimeField()
    actor = models.CharField(max_length=150)
    kind = models.CharField(max_length=64)
    action_id = models.BigIntegerField(null=True, blank=True)
    rollback_id = models.BigIntegerField(null=True, blank=True)
    data = models.TextField(help_text="Canonical JSON (sorted keys), hashed exactly as stored.")
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["seq"]
        indexes = [
            models.Index(fields=["action_id", "seq"], name="audit_event_action"),
            models.Index(fields=["rollback_id", "seq"], name="audit_event_rollback"),
            models.Index(fields=["kind", "seq"], name="audit_event_kind"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.kind} by {self.actor}"


class AuditChainHead(models.Model):
    """The single row every writer locks to append: it serializes appends so concurrent writers never fork the
    chain, and tells the next writer the last `seq` and `hash` without scanning the trail."""

    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)

    def __str__(self) -> str:
        return f"head #{self.seq}"


class AuditLink(models.Model):
    """Which actions a rollback covers (targets and cascade), written once when the rollback is requested, so
    the trail is queryable from either end without the audit app knowing the rollback models. Append-only."""

    rollback_id = models.BigIntegerField()
    action_id = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rollback_id", "action_id"], name="audit_link_unique")]
        indexes = [models.Index(fields=["action_id", "rollback_id"], name="audit_link_action")]

    def __str__(self) -> str:
        return f"rollback {self.rollback_id} covers action {self.action_id}"
