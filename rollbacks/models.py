from django.conf import settings
from django.db import models

from actions.models import Action
from policies.models import PolicyVersion
from policies.roles import TRIGGERS


class Trigger(models.TextChoices):
    REVIEWER_ERROR = "reviewer_error"
    CUSTOMER_REQUEST = "customer_request"
    INCIDENT = "incident"
    POLICY_REVERSAL = "policy_reversal"
    REGULATORY_ORDER = "regulatory_order"


assert tuple(Trigger.values) == TRIGGERS


class RollbackState(models.TextChoices):
    PENDING_AUTHORIZATION = "pending_authorization"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    AUTHORIZED = "authorized"
    EXECUTING = "executing"
    PAUSED = "paused"
    COMMUNICATING = "communicating"
    COMPLETED = "completed"
    PARTIALLY_COMPLETED = "partially_completed"
    FAILED = "failed"


_S = RollbackState
# Every allowed transition; a service that moves a rollback checks this table under the row lock.
ROLLBACK_TRANSITIONS: dict[str, frozenset[str]] = {
    _S.PENDING_AUTHORIZATION: frozenset({_S.AUTHORIZED, _S.REJECTED, _S.CANCELLED}),
    _S.AUTHORIZED: frozenset({_S.EXECUTING, _S.CANCELLED}),
    _S.EXECUTING: frozenset({_S.PAUSED, _S.COMMUNICATING, _S.COMPLETED, _S.PARTIALLY_COMPLETED, _S.FAILED}),
    _S.PAUSED: frozenset({_S.EXECUTING}),
    _S.COMMUNICATING: frozenset({_S.COMPLETED, _S.PARTIALLY_COMPLETED, _S.FAILED, _S.EXECUTING}),
    # A person retrying or resolving what is left can still bring a finished rollback to `completed`.
    _S.PARTIALLY_COMPLETED: frozenset({_S.EXECUTING, _S.COMMUNICATING, _S.COMPLETED}),
    _S.FAILED: frozenset({_S.EXECUTING, _S.COMMUNICATING, _S.COMPLETED, _S.PARTIALLY_COMPLETED}),
    _S.REJECTED: frozenset(),
    _S.CANCELLED: frozenset(),
    _S.COMPLETED: frozenset(),
}
LIVE_STATES = frozenset({_S.PENDING_AUTHORIZATION, _S.AUTHORIZED, _S.EXECUTING, _S.PAUSED, _S.COMMUNICATING})


class Rollback(models.Model):
    """A request to reverse one action or many, from the moment it is filed until its last step and
    communication are done. Its target set, cascade and plan are frozen at creation (the steps)."""

    trigger = models.CharField(max_length=32, choices=Trigger.choices)
    reason = models.TextField()
    reference = models.CharField(max_length=200, null=True, blank=True, default=None)  # noqa: DJ001 null = none given
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="rollbacks_requested"
    )
    state = models.CharField(max_length=24, choices=RollbackState.choices, default=RollbackState.PENDING_AUTHORIZATION)
    policy_version = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT, related_name="rollbacks")
    max_cascade_depth = models.PositiveSmallIntegerField(help_text="The depth authorized when requested.")
    confirmed_depth = models.PositiveSmallIntegerField(
        help_text="The depth execution may reach now: authorized plus confirmed."
    )
    selector = models.JSONField(null=True, blank=True)
    plan = models.JSONField(default=dict, help_text="Frozen counts: actions, cascade, irreversible, window_expired.")
    required_signoffs = models.JSONField(default=list, help_text="[{role, count}], the expired-window extra merged in.")
    window_closes_at = models.DateTimeField(
        null=True, blank=True, help_text="The earliest reversal window of its targets, frozen with them (null: none)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    authorized_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["state", "trigger", "created_at"], name="rollback_queue"),
            models.Index(fields=["requested_by", "created_at"], name="rollback_requester"),
            # A queue page walks the pending requests newest first and stops after its rows.
            models.Index(fields=["state", "created_at", "id"], name="rollback_state_newest"),
            # ... or the window closing first (nulls last), newest first among equals.
            models.Index(fields=["state", "window_closes_at", "-created_at", "-id"], name="rollback_state_closing"),
        ]

    def __str__(self) -> str:
        return f"Rollback #{self.pk} ({self.trigger}, {self.state})"


class RequiredSignoff(models.Model):
    """One role a rollback needs sign-offs from, and how many: the rows of its `required_signoffs`, written with
    it by request_rollback from the same list and never changed. A table rather than only the JSON so that the
    queue ("which pending requests still miss a role this person holds?") is answered by the database."""

    # No index of its own on rollback: the unique (rollback, role) constraint's index serves those lookups.
    rollback = models.ForeignKey(Rollback, on_delete=models.CASCADE, related_name="requirements", db_index=False)
    role = models.CharField(max_length=32)
    count = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rollback", "role"], name="required_signoff_once_per_role")]
        indexes = [models.Index(fields=["role", "rollback"], name="required_signoff_role")]

    def __str__(self) -> str:
        return f"{self.count} {self.role} for rollback {self.rollback_id}"


class StepOutcome(models.TextChoices):
    PENDING = "pending"
    REVERSED = "reversed"
    ALREADY_REVERSED = "already_reversed"
    NOT_REVERSIBLE = "not_reversible"
    PREREQUISITES_UNMET = "prerequisites_unmet"
    FAILED = "failed"
    COMPENSATION_FAILED = "compensation_failed"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    LOOP_STOPPED = "loop_stopped"
    MANUAL_DONE = "manual_done"


_O = StepOutcome
STEP_TRANSITIONS: dict[str, frozenset[str]] = {
    _O.PENDING: frozenset(
        {
            _O.REVERSED,
            _O.ALREADY_REVERSED,
            _O.NOT_REVERSIBLE,
            _O.PREREQUISITES_UNMET,
            _O.FAILED,
            _O.COMPENSATION_FAILED,
            _O.AWAITING_CONFIRMATION,
            _O.LOOP_STOPPED,
        }
    ),
    _O.AWAITING_CONFIRMATION: frozenset({_O.PENDING}),
    _O.FAILED: frozenset({_O.PENDING, _O.MANUAL_DONE}),
    _O.PREREQUISITES_UNMET: frozenset({_O.PENDING, _O.MANUAL_DONE}),
    _O.NOT_REVERSIBLE: frozenset({_O.MANUAL_DONE}),
    _O.COMPENSATION_FAILED: frozenset({_O.MANUAL_DONE}),
    _O.LOOP_STOPPED: frozenset({_O.MANUAL_DONE}),
    _O.REVERSED: frozenset(),
    _O.ALREADY_REVERSED: frozenset(),
    _O.MANUAL_DONE: frozenset(),
}
FINISHED_OUTCOMES = frozenset({_O.REVERSED, _O.ALREADY_REVERSED, _O.MANUAL_DONE})
NEEDS_PERSON_OUTCOMES = frozenset(
    {_O.NOT_REVERSIBLE, _O.PREREQUISITES_UNMET, _O.FAILED, _O.COMPENSATION_FAILED, _O.LOOP_STOPPED}
)


class Step(models.Model):
    """One action's reversal inside a rollback: its durable state is what makes execution exactly-once across
    crashes and redeliveries. A loop arrival gets a step of its own that ends `loop_stopped`."""

    rollback = models.ForeignKey(Rollback, on_delete=models.PROTECT, related_name="steps")
    action = models.ForeignKey(Action, on_delete=models.PROTECT, related_name="rollback_steps")
    depth = models.PositiveSmallIntegerField()
    via = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="next_steps")
    is_loop = models.BooleanField(default=False)
    outcome = models.CharField(max_length=24, choices=StepOutcome.choices, default=StepOutcome.PENDING)
    phase = models.CharField(max_length=16, blank=True, help_text="The last phase that answered ok.")
    attempts = models.PositiveIntegerField(default=0)
    detail = models.TextField(blank=True)
    unmet = models.JSONField(default=list)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["depth", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rollback", "action"], condition=models.Q(is_loop=False), name="step_one_per_action"
            ),
        ]
        indexes = [
            models.Index(fields=["rollback", "depth", "outcome"], name="step_level"),
            # The inbox finds the few steps waiting for a person among millions of finished ones.
            models.Index(
                fields=["rollback"],
                condition=models.Q(outcome__in=sorted(NEEDS_PERSON_OUTCOMES)),
                name="step_needs_person",
            ),
            # A page of a large rollback's steps (GET .../steps/, the request page) walks this in order.
            models.Index(fields=["rollback", "depth", "id"], name="step_page"),
        ]

    def __str__(self) -> str:
        return f"step {self.pk} of rollback {self.rollback_id}: action {self.action_id} {self.outcome}"


class SignoffDecision(models.TextChoices):
    APPROVE = "approve"
    REJECT = "reject"


class SignOff(models.Model):
    """A signer's decision on a rollback, in the role it filled. One person signs a rollback once."""

    rollback = models.ForeignKey(Rollback, on_delete=models.PROTECT, related_name="signoffs")
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="signoffs")
    role = models.CharField(max_length=32)
    decision = models.CharField(max_length=8, choices=SignoffDecision.choices)
    comment = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [models.UniqueConstraint(fields=["rollback", "signer"], name="signoff_once_per_person")]

    def __str__(self) -> str:
        return f"{self.signer_id} {self.decision} as {self.role} on rollback {self.rollback_id}"


class CommunicationStatus(models.TextChoices):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class Communication(models.Model):
    """A message a rollback owes someone: the customer (through the integrator's webhook), the internal team or
    the regulator (by email). The rollback is not `completed` until each is sent."""

    rollback = models.ForeignKey(Rollback, on_delete=models.PROTECT, related_name="communications")
    step = models.ForeignKey(Step, on_delete=models.PROTECT, null=True, blank=True, related_name="communications")
    audience = models.CharField(max_length=16)
    channel = models.CharField(max_length=16)  # webhook | email
    template = models.CharField(max_length=100)
    recipients = models.JSONField(default=list)
    status = models.CharField(max_length=8, choices=CommunicationStatus.choices, default=CommunicationStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(
        null=True, blank=True, help_text="A worker is sending it until then; another waits rather than send it twice."
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.audience} {self.template} ({self.status})"


class IntegratorEvent(models.Model):
    """A decision or an ending of a rollback owed to an integrator's `events_url`: the outbox row is written in
    the transaction that moves the rollback, so a crash between that commit and the POST loses nothing, and its
    body is frozen then, so a resend says what was true at the time. One per (rollback, integrator, event)."""

    rollback = models.ForeignKey(Rollback, on_delete=models.PROTECT, related_name="integrator_events")
    integrator = models.CharField(max_length=150, help_text="The [integrators.KEY] of the policy (its username).")
    event = models.CharField(max_length=40)
    url = models.URLField(max_length=2000)
    body = models.JSONField()
    status = models.CharField(max_length=8, choices=CommunicationStatus.choices, default=CommunicationStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["rollback", "integrator", "event"], name="integrator_event_once")
        ]
        indexes = [models.Index(fields=["rollback", "status", "id"], name="integrator_event_pending")]

    def __str__(self) -> str:
        return f"{self.event} of rollback {self.rollback_id} to {self.integrator} ({self.status})"


class RemediationReason(models.TextChoices):
    NOT_REVERSIBLE = "not_reversible"
    MANUAL_METHOD = "manual_method"
    COMPENSATION_FAILED = "compensation_failed"


class RemediationTask(models.Model):
    """Work for a person: an action the workers cannot reverse, or a compensation that did not go out."""

    step = models.ForeignKey(Step, on_delete=models.PROTECT, related_name="remediation_tasks")
    reason = models.CharField(max_length=24, choices=RemediationReason.choices)
    instructions = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="remediations_done"
    )
    done_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["done_at", "-created_at"]
        # The inbox and the remediation page read the open tasks only.
        indexes = [models.Index(fields=["step"], condition=models.Q(done_at__isnull=True), name="remediation_open")]

    def __str__(self) -> str:
        return f"{self.reason} for step {self.step_id}"


class IdempotencyRecord(models.Model):
    """The first response to a `POST /rollbacks/` carrying an Idempotency-Key, replayed to retries for 24 h."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_per_user")]

    def __str__(self) -> str:
        return f"{self.key} ({self.status_code})"


class AnnouncementKind(models.TextChoices):
    """The kinds of inbox item a person is told of (the contract's "The inbox")."""

    SIGNOFF = "signoff"
    CONFIRM_CASCADE = "confirm_cascade"
    STEP = "step"
    REMEDIATION = "remediation"


class AnnouncementPurpose(models.TextChoices):
    NEW = "new"  # the item entered the inbox
    REMINDER = "reminder"  # still pending after the trigger's remind_after
    WINDOW_WARNING = "window_warning"  # the request's earliest reversal window closes within warn_before_window


class Announcement(models.Model):
    """That an item of people's inboxes was announced, once per (item, purpose): the row is the memory that
    makes announcing safe to repeat (beat every minute, a nudge after each transition, a restarted worker or a
    redelivered task all find it and send nothing again). `item` names the item as it entered the inbox, so an
    item that leaves and comes back (a step retried that fails again, a cascade paused at the next level) is a
    new one. Its text is frozen when it is written: a resend says what was true then."""

    item = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=AnnouncementKind.choices)
    purpose = models.CharField(max_length=16, choices=AnnouncementPurpose.choices)
    rollback = models.ForeignKey(Rollback, on_delete=models.PROTECT, related_name="announcements")
    step = models.ForeignKey(Step, on_delete=models.PROTECT, null=True, blank=True, related_name="announcements")
    remediation = models.ForeignKey(
        RemediationTask, on_delete=models.PROTECT, null=True, blank=True, related_name="announcements"
    )
    since = models.DateTimeField(help_text="When the item entered the inbox.")
    subject = models.CharField(max_length=200)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(
        null=True, blank=True, help_text="Found no longer waiting: no reminder or warning looks at it again."
    )

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["item", "purpose"], name="announcement_once")]
        indexes = [
            models.Index(fields=["rollback", "kind", "purpose"], name="announcement_rollback"),
            models.Index(fields=["purpose", "closed_at", "since"], name="announcement_open"),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} {self.item}"


class DeliveryChannel(models.TextChoices):
    EMAIL = "email"
    CHAT = "chat"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    WITHDRAWN = "withdrawn"  # by the time it was due the item was done, or no longer this person's


class AnnouncementDelivery(models.Model):
    """One message of an announcement: an email to one person who may act on the item, or the one post to the
    team chat. Unique per person (and one chat post) per announcement, so nothing goes out twice."""

    announcement = models.ForeignKey(Announcement, on_delete=models.PROTECT, related_name="deliveries")
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="announcements_received",
        help_text="Null for the chat post.",
    )
    channel = models.CharField(max_length=8, choices=DeliveryChannel.choices)
    address = models.CharField(max_length=320, help_text="The email address, or the chat's environment variable.")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(
        null=True, blank=True, help_text="A worker is sending it until then (or, after a failure, waits until then)."
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["announcement", "recipient"],
                condition=models.Q(recipient__isnull=False),
                name="announcement_delivery_once_per_person",
            ),
            models.UniqueConstraint(
                fields=["announcement"],
                condition=models.Q(channel="chat"),
                name="announcement_delivery_one_chat_post",
            ),
        ]
        indexes = [models.Index(fields=["status", "claimed_until"], name="announcement_delivery_due")]

    def __str__(self) -> str:
        return f"{self.channel} to {self.address} ({self.status})"
