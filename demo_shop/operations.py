"""The reversal operations the demo shop knows, one per kind of row an agent action created.

Each operation finds its row from the action (its `external_id` is the row's `reference`, its `subject` the
customer), says which of the shop's prerequisites are unmet, undoes the effect unless it is already undone, and
tells whether it is undone. Undoing twice is a no-op, so a second rollback of the same action changes nothing.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db.models import F

from demo_shop.models import Benefit, Customer, Membership, OutboundEmail, PointsGrant, RecordUpdate, Refund, TierChange

ACCOUNT_OPEN = "account_open"
POINTS_UNSPENT = "points_unspent"


class RowNotFound(Exception):
    pass


class CannotReverse(Exception):
    """The row exists but its reversal cannot be applied (prerequisite unmet, changed since)."""


def customer_number(subject: str) -> int | None:
    kind, _, number = subject.partition(":")
    if kind != "customer" or not number.isdigit():
        return None
    return int(number)


def _account_open(customer: Customer) -> list[str]:
    return [] if customer.status == Customer.Status.OPEN else [ACCOUNT_OPEN]


# --- refund.chargeback -------------------------------------------------------------------------------------


def _refund_unmet(refund: Refund) -> list[str]:
    return _account_open(refund.customer)


def _charge_back(refund: Refund, now: datetime) -> None:
    if refund.status == Refund.Status.CHARGED_BACK:
        return
    Customer.objects.filter(pk=refund.customer_id).update(balance=F("balance") - refund.amount)
    refund.status = Refund.Status.CHARGED_BACK
    refund.charged_back_at = now
    refund.save(update_fields=["status", "charged_back_at"])


# --- points.revoke -----------------------------------------------------------------------------------------


def _points_unmet(grant: PointsGrant) -> list[str]:
    if grant.status == PointsGrant.Status.REVOKED:
        return []
    # Points the customer already redeemed cannot be taken back from the balance.
    return [] if grant.customer.points >= grant.points else [POINTS_UNSPENT]


def _revoke_points(grant: PointsGrant, now: datetime) -> None:
    if grant.status == PointsGrant.Status.REVOKED:
        return
    Customer.objects.filter(pk=grant.customer_id).update(points=F("points") - grant.points)
    grant.status = PointsGrant.Status.REVOKED
    grant.revoked_at = now
    grant.save(update_fields=["status", "revoked_at"])


# --- tier.downgrade ----------------------------------------------------------------------------------------


def _downgrade_tier(change: TierChange, now: datetime) -> None:
    if change.status == TierChange.Status.REVERTED:
        return
    Customer.objects.filter(pk=change.customer_id).update(tier=change.from_tier)
    change.status = TierChange.Status.REVERTED
    change.reverted_at = now
    change.save(update_fields=["status", "reverted_at"])


# --- email.recall ------------------------------------------------------------------------------------------


def _recall_email(email: OutboundEmail, now: datetime) -> None:
    if email.status != OutboundEmail.Status.SENT:
        return
    # A message already read cannot be recalled: the attempt is made and recorded, the partial reversal stands.
    email.status = OutboundEmail.Status.RECALL_FAILED_READ if email.read else OutboundEmail.Status.RECALLED
    email.save(update_fields=["status"])


# --- benefits.restore (python handler) ---------------------------------------------------------------------


class BenefitGrant:
    """The benefits one re-evaluation granted, reversed together."""

    def __init__(self, reference: str, customer: Customer):
        self.reference = reference
        self.customer = customer
        self.benefits = list(Benefit.objects.filter(reference=reference, customer=customer))
        if not self.benefits:
            raise RowNotFound(f"no benefits granted by {reference}")


def _withdraw_benefits(grant: BenefitGrant, now: datetime) -> None:
    # Used benefits stay used (the manifest calls this reversal partial); none can be used any more.
    Benefit.objects.filter(reference=grant.reference, status=Benefit.Status.ACTIVE).update(
        status=Benefit.Status.WITHDRAWN
    )


def _benefits_withdrawn(grant: BenefitGrant) -> bool:
    return not Benefit.objects.filter(reference=grant.reference, status=Benefit.Status.ACTIVE).exists()


# --- membership.suspend (python handler) -------------------------------------------------------------------


def _suspend_membership(membership: Membership, now: datetime) -> None:
    if membership.status == Membership.Status.SUSPENDED:
        return
    membership.status = Membership.Status.SUSPENDED
    membership.save(update_fields=["status"])


# --- record.restore (python handler) -----------------------------------------------------------------------


def _restore_record(update: RecordUpdate, now: datetime) -> None:
    if update.status == RecordUpdate.Status.RESTORED:
        return
    record = update.record
    if record.values != update.after:
        raise CannotReverse(f"{record.name} changed again after {update.reference}; restore it by hand")
    record.values = update.before
    record.save(update_fields=["values"])
    update.status = RecordUpdate.Status.RESTORED
    update.restored_at = now
    update.save(update_fields=["status", "restored_at"])


@dataclass(frozen=True)
class Operation:
    name: str
    find: Callable[[str, Customer], Any]
    unmet: Callable[[Any], list[str]]
    apply: Callable[[Any, datetime], None]
    is_reversed: Callable[[Any], bool]
    # What in the action's payload must agree with the shop's row: a call that names the right row but another
    # amount is refused rather than trusted.
    mismatch: Callable[[Any, Mapping[str, Any]], str | None] = lambda row, payload: None


def _refund_mismatch(refund: Refund, payload: Mapping[str, Any]) -> str | None:
    sent, currency = payload.get("amount"), payload.get("currency", refund.currency)
    if sent is None:
        return None
    try:
        same = Decimal(str(sent)) == refund.amount and currency == refund.currency
    except (InvalidOperation, ValueError):
        same = False
    return None if same else f"the action says {sent} {currency}, the refund was {refund.amount} {refund.currency}"


def _points_mismatch(grant: PointsGrant, payload: Mapping[str, Any]) -> str | None:
    sent = payload.get("points")
    if sent is None or sent == grant.points:
        return None
    return f"the action says {sent} points, the grant was {grant.points}"


def _by_reference(model: Any, **extra: Any) -> Callable[[str, Customer], Any]:
    def find(reference: str, customer: Customer) -> Any:
        try:
            # Locked: two rollbacks reaching the same row at once must not both apply their effect.
            return (
                model.objects.select_for_update()
                .select_related("customer")
                .get(reference=reference, customer=customer, **extra)
            )
        except model.DoesNotExist:
            raise RowNotFound(f"no {model._meta.verbose_name} {reference} for customer {customer.number}") from None

    return find


def _record_update(reference: str, customer: Customer) -> RecordUpdate:
    try:
        return (
            RecordUpdate.objects.select_for_update()
            .select_related("record")
            .get(reference=reference, record__customer=customer)
        )
    except RecordUpdate.DoesNotExist:
        raise RowNotFound(f"no record update {reference} for customer {customer.number}") from None


def _nothing_unmet(row: Any) -> list[str]:
    return []


OPERATIONS: Mapping[str, Operation] = {
    op.name: op
    for op in (
        Operation(
            "refund.chargeback",
            _by_reference(Refund),
            _refund_unmet,
            _charge_back,
            lambda r: r.status == Refund.Status.CHARGED_BACK,
            _refund_mismatch,
        ),
        Operation(
            "points.revoke",
            _by_reference(PointsGrant),
            _points_unmet,
            _revoke_points,
            lambda g: g.status == PointsGrant.Status.REVOKED,
            _points_mismatch,
        ),
        Operation(
            "tier.downgrade",
            _by_reference(TierChange),
            _nothing_unmet,
            _downgrade_tier,
            lambda c: c.status == TierChange.Status.REVERTED,
        ),
        Operation(
            "email.recall",
            _by_reference(OutboundEmail, source=OutboundEmail.Source.AGENT),
            _nothing_unmet,
            _recall_email,
            lambda e: e.status != OutboundEmail.Status.SENT,
        ),
        Operation("benefits.restore", BenefitGrant, _nothing_unmet, _withdraw_benefits, _benefits_withdrawn),
        Operation(
            "membership.suspend",
            _by_reference(Membership),
            _nothing_unmet,
            _suspend_membership,
            lambda m: m.status == Membership.Status.SUSPENDED,
        ),
        Operation(
            "record.restore",
            _record_update,
            _nothing_unmet,
            _restore_record,
            lambda u: u.status == RecordUpdate.Status.RESTORED,
        ),
    )
}
