"""The demo shop's own books: what a real integrator keeps on its side of the reversal webhooks.

Each row an agent action created carries `reference`, the action's `external_id`, so a reversal call (which names
the action) finds the row it must undo. Customers are the actions' subjects (`customer:1001`).
"""

from decimal import Decimal

from django.db import models


class Customer(models.Model):
    """A shop customer. A closed account cannot be charged back (the `account_open` prerequisite)."""

    class Status(models.TextChoices):
        OPEN = "open"
        CLOSED = "closed"

    number = models.PositiveIntegerField(unique=True)
    name = models.CharField(max_length=200)
    email = models.EmailField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    balance = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    points = models.IntegerField(default=0)
    tier = models.CharField(max_length=20, default="bronze")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"customer:{self.number} {self.name}"

    @property
    def subject(self) -> str:
        return f"customer:{self.number}"


class Refund(models.Model):
    """Money the shop returned to a customer's balance; a chargeback takes it back."""

    class Status(models.TextChoices):
        ISSUED = "issued"
        CHARGED_BACK = "charged_back"

    reference = models.CharField(max_length=255, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ISSUED)
    charged_back_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"refund {self.reference} ({self.status})"


class PointsGrant(models.Model):
    """Loyalty points credited to a customer. They can be revoked only while the customer still holds them."""

    class Status(models.TextChoices):
        GRANTED = "granted"
        REVOKED = "revoked"

    reference = models.CharField(max_length=255, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="points_grants")
    points = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.GRANTED)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.points} points {self.reference} ({self.status})"


class TierChange(models.Model):
    """A move between loyalty tiers; reverting it puts the customer back on `from_tier`."""

    class Status(models.TextChoices):
        APPLIED = "applied"
        REVERTED = "reverted"

    reference = models.CharField(max_length=255, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="tier_changes")
    from_tier = models.CharField(max_length=20)
    to_tier = models.CharField(max_length=20)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.APPLIED)
    reverted_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.from_tier} -> {self.to_tier} {self.reference} ({self.status})"


class Benefit(models.Model):
    """A perk a benefits re-evaluation granted. One already used this month stays used when it is withdrawn."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        WITHDRAWN = "withdrawn"

    reference = models.CharField(max_length=255, help_text="The re-evaluation that granted it.")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="benefits")
    name = models.CharField(max_length=100)
    used = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["reference", "name"], name="benefit_once_per_grant")]

    def __str__(self) -> str:
        return f"{self.name} for {self.customer_id} ({self.status})"


class Membership(models.Model):
    """A customer's club membership; a reinstatement made it active, its reversal suspends it again."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        SUSPENDED = "suspended"

    reference = models.CharField(max_length=255, unique=True, help_text="The reinstatement that activated it.")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="memberships")
    plan = models.CharField(max_length=50, default="club")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)

    def __str__(self) -> str:
        return f"{self.plan} membership {self.reference} ({self.status})"


class Record(models.Model):
    """A customer record agents edit (a shipping address, a contact preference)."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="records")
    name = models.CharField(max_length=100)
    values = models.JSONField(default=dict)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["customer", "name"], name="record_name_per_customer")]

    def __str__(self) -> str:
        return f"{self.name} of {self.customer_id}"


class RecordUpdate(models.Model):
    """One edit of a record, with the values it replaced: what a reversal restores."""

    class Status(models.TextChoices):
        APPLIED = "applied"
        RESTORED = "restored"

    reference = models.CharField(max_length=255, unique=True)
    record = models.ForeignKey(Record, on_delete=models.PROTECT, related_name="updates")
    before = models.JSONField(default=dict)
    after = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.APPLIED)
    restored_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"update {self.reference} of {self.record} ({self.status})"


class OutboundEmail(models.Model):
    """A message to a customer: sent by an agent (`email.send`, recallable while unread) or a notification the
    Rollback Console asked the shop to deliver (the shop owns the customer's address)."""

    class Source(models.TextChoices):
        AGENT = "agent"
        ROLLBACK_NOTIFICATION = "rollback_notification"

    class Status(models.TextChoices):
        SENT = "sent"
        RECALLED = "recalled"
        RECALL_FAILED_READ = "recall_failed_read"

    reference = models.CharField(max_length=255, unique=True, help_text="Action external id or Idempotency-Key.")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="emails")
    source = models.CharField(max_length=24, choices=Source.choices)
    template = models.CharField(max_length=100, blank=True)
    to = models.EmailField()
    subject = models.CharField(max_length=255)
    body = models.TextField()
    read = models.BooleanField(default=False)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.SENT)
    rollback_id = models.BigIntegerField(null=True, blank=True)
    step_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.subject} to {self.to}"


class ReversalLedgerEntry(models.Model):
    """Every reversal call the shop received, one row per Idempotency-Key.

    A `reverse` that succeeded keeps its answer, and a retry with the same key gets that answer back without
    touching the books again: each effect happens once. Failed answers are not kept as final, so a step retried
    after a person fixed the cause (reopened the account, say) is evaluated afresh.
    """

    class Channel(models.TextChoices):
        WEBHOOK = "webhook"
        PYTHON = "python"

    idempotency_key = models.CharField(max_length=255, unique=True)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    phase = models.CharField(max_length=8)
    operation = models.CharField(max_length=100)
    external_id = models.CharField(max_length=255)
    rollback_id = models.BigIntegerField(null=True)
    step_id = models.BigIntegerField(null=True)
    body_sha256 = models.CharField(max_length=64, help_text="A different body under the same key is refused.")
    answer = models.JSONField(default=dict)
    applied = models.BooleanField(default=False, help_text="The reverse effect was applied under this key.")
    calls = models.PositiveIntegerField(default=0)
    first_received_at = models.DateTimeField(auto_now_add=True)
    last_received_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-first_received_at", "-id"]
        verbose_name_plural = "reversal ledger entries"

    def __str__(self) -> str:
        return f"{self.idempotency_key} {self.answer.get('status', '')}"


class ReceivedEvent(models.Model):
    """What the Rollback Console told the shop about rollbacks of its actions (its `events_url`), one row per
    signed idempotency key: the shop's own view of a decision, kept so its people see it without polling."""

    idempotency_key = models.CharField(max_length=255, unique=True)
    event = models.CharField(max_length=40)
    rollback_id = models.BigIntegerField(null=True)
    state = models.CharField(max_length=24, blank=True)
    body = models.JSONField(default=dict)
    calls = models.PositiveIntegerField(default=1)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.event} of rollback {self.rollback_id}"
