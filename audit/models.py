from django.db import models


class AuditEvent(models.Model):
    """One entry of the append-only, hash-chained audit trail.

    Nothing but `audit.services.record_event(s)` writes this table, and the database refuses UPDATE, DELETE
    and TRUNCATE on it. `hash` is SHA-256 over the event's canonical JSON, which includes `prev_hash`, so any
    change to a stored row breaks the chain at that row's `seq`. Actors and descriptions are frozen as text.

    Event kinds (stable names, grouped by domain):
    - policy.loaded, policy.activated
    - action.recorded, action.linked, action.state_changed
    - auth.failed (one per client address and minute, with the count: audit.access), auth.forbidden
    - access.groups_changed, access.permissions_changed, access.group_permissions_changed, access.user_created,
      access.user_changed, access.user_deleted, access.password_changed, access.login_failed, access.locked_out,
      access.login_refused (per address and minute, with the count), access.throttled (likewise)
    - rollback.requested, rollback.refused, rollback.signoff, rollback.signoff_refused, rollback.authorized,
      rollback.rejected, rollback.cancelled, rollback.executing, rollback.paused, rollback.cascade_confirmed,
      rollback.resumed,
      rollback.communicating, rollback.completed, rollback.partially_completed, rollback.failed
    - rollback.step.attempt, rollback.step.reversed, rollback.step.already_reversed,
      rollback.step.not_reversible, rollback.step.prerequisites_unmet, rollback.step.failed,
      rollback.step.compensation_failed, rollback.step.loop_stopped, rollback.step.awaiting_confirmation,
      rollback.step.retried, rollback.step.resolved, rollback.step.confirmed, rollback.step.checked,
      rollback.step.reverse_answered, rollback.step.paused (its integrator's circuit is open: it waits, pending)
    - rollback.steps.queued (the engine queued a level: `started_at` set)
    - rollback.step.refused, rollback.communication.refused, rollback.run_refused (a worker refused a message)
    - communication.sent, communication.failed, communication.attempt, communication.paused
    - integrator_event.sent, integrator_event.attempt, integrator_event.failed, integrator_event.paused (an
      integrator told of a decision; paused: its circuit is open and nothing was sent)
    - announcement.opened (an inbox item announced to its people), announcement.sent, announcement.attempt,
      announcement.failed, announcement.withdrawn (one per message), announcement.refused (a task naming none)
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


class AnchorDelivery(models.Model):
    """An anchor line on its way to `AUDIT_ANCHOR_URL`, the second place anchors are kept. The file is written
    first; this row lets a receiver outage delay the copy instead of losing it: pending rows are posted in order,
    each until the receiver accepts it once. Operational, not evidence: the anchor line itself is the evidence."""

    seq = models.BigIntegerField()
    hash = models.CharField(max_length=64)
    line = models.TextField(help_text="The anchor's JSON line exactly as written to the file and posted.")
    created_at = models.DateTimeField(auto_now_add=True)
    attempts = models.PositiveIntegerField(default=0)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["delivered_at", "id"], name="audit_anchor_pending")]

    def __str__(self) -> str:
        return f"anchor #{self.seq} ({'delivered' if self.delivered_at else 'pending'})"


class AuditCheckpoint(models.Model):
    """A prefix of the trail (up to `seq`, ending in `hash`) that a verification recomputed whole. The next check
    starts after it instead of from seq 1; each checkpoint is also written out as an anchor, so a checkpoint row
    forged in the database disagrees with the anchor written when it was made."""

    seq = models.BigIntegerField()
    hash = models.CharField(max_length=64)
    verified_at = models.DateTimeField(auto_now_add=True)
    full = models.BooleanField(help_text="Whether the verification that made it recomputed the whole trail.")

    class Meta:
        ordering = ["-seq", "-id"]
        get_latest_by = ["seq", "id"]

    def __str__(self) -> str:
        return f"verified up to #{self.seq}"


class AccessFailureTally(models.Model):
    """Refused calls counted per kind, client address and minute until that minute is over, when one event carries
    the count (`audit.access.flush_access_failures`): a flood of bad calls bumps one row instead of growing the
    append-only trail (and queueing on the chain head's lock) by a row per call. Rows are deleted once written."""

    kind = models.CharField(max_length=64)
    address = models.CharField(max_length=64)
    minute = models.BigIntegerField(help_text="Minutes since the Unix epoch, UTC.")
    count = models.PositiveIntegerField(default=1)
    method = models.CharField(max_length=16, help_text="The first refused call's, as are path and reason.")
    path = models.CharField(max_length=200)
    reason = models.CharField(max_length=200)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "address", "minute"], name="audit_access_failure_unique")
        ]
        indexes = [models.Index(fields=["minute"], name="audit_access_failure_minute")]

    def __str__(self) -> str:
        return f"{self.count} of {self.kind} from {self.address} in minute {self.minute}"
