"""Every write of the demo shop: answering reversal calls (webhook and python alike), taking customer
notifications, and opening the books the demo starts from."""

import fcntl
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from demo_shop.models import (
    Benefit,
    Customer,
    Membership,
    OutboundEmail,
    PointsGrant,
    ReceivedEvent,
    Record,
    RecordUpdate,
    Refund,
    ReversalLedgerEntry,
    TierChange,
)
from demo_shop.operations import OPERATIONS, CannotReverse, RowNotFound, customer_number

PHASES = ("check", "reverse", "verify")


class KeyReused(Exception):
    """The same Idempotency-Key came with a different body."""


@dataclass(frozen=True)
class ReversalRequest:
    """One phase of one step, as the contract's reversal webhook body describes it."""

    phase: str
    operation: str
    external_id: str
    subject: str
    step_id: int | None = None
    rollback_id: int | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)


def body_digest(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def answer_reversal(
    request: ReversalRequest, *, idempotency_key: str, digest: str, channel: str = "webhook"
) -> dict[str, Any]:
    """Answer one phase, applying a `reverse` at most once per key. Raises KeyReused for a key replayed with
    another body."""
    with transaction.atomic():
        entry, _ = ReversalLedgerEntry.objects.get_or_create(
            idempotency_key=idempotency_key,
            defaults={
                "channel": channel,
                "phase": request.phase,
                "operation": request.operation,
                "external_id": request.external_id,
                "rollback_id": request.rollback_id,
                "step_id": request.step_id,
                "body_sha256": digest,
            },
        )
        entry = ReversalLedgerEntry.objects.select_for_update().get(pk=entry.pk)
        if entry.body_sha256 != digest:
            raise KeyReused(f"Idempotency-Key {idempotency_key} was used with a different body")
        entry.calls += 1
        if not entry.applied:
            answer = _evaluate(request)
            entry.applied = request.phase == "reverse" and answer["status"] == "ok"
            entry.answer = answer
        entry.save(update_fields=["calls", "applied", "answer", "last_received_at"])
        return dict(entry.answer)


def _evaluate(request: ReversalRequest) -> dict[str, Any]:
    operation = OPERATIONS.get(request.operation)
    if operation is None:
        return {"status": "failed", "detail": f"the shop does not know the operation {request.operation!r}"}
    if request.phase not in PHASES:
        return {"status": "failed", "detail": f"unknown phase {request.phase!r}"}
    number = customer_number(request.subject)
    customer = Customer.objects.filter(number=number).first() if number is not None else None
    if customer is None:
        return {"status": "failed", "detail": f"no customer {request.subject!r}"}
    try:
        row = operation.find(request.external_id, customer)
    except RowNotFound as exc:
        return {"status": "failed", "detail": str(exc)}
    mismatch = operation.mismatch(row, request.payload)
    if mismatch:
        return {"status": "failed", "detail": f"{request.external_id}: {mismatch}"}
    if request.phase == "verify":
        if operation.is_reversed(row):
            return {"status": "ok"}
        return {"status": "failed", "detail": f"{request.external_id} is not reversed"}
    unmet = [] if operation.is_reversed(row) else operation.unmet(row)
    if request.phase == "check":
        return {"status": "unmet", "unmet": unmet} if unmet else {"status": "ok"}
    if unmet:
        return {"status": "failed", "detail": "prerequisites unmet: " + ", ".join(unmet)}
    try:
        operation.apply(row, timezone.now())
    except CannotReverse as exc:
        return {"status": "failed", "detail": str(exc)}
    return {"status": "ok"}


NOTIFICATION_TEMPLATES: dict[str, tuple[str, str]] = {
    "refund_reversed": (
        "Your refund was reversed",
        "We reversed the refund {external_id} we issued by mistake; the amount is charged back to your account.",
    ),
    "points_revoked": (
        "Loyalty points removed",
        "The loyalty points credited with {external_id} were removed from your balance.",
    ),
    "tier_restored": (
        "Your loyalty tier",
        "Your loyalty tier is back to what it was before {external_id}.",
    ),
}


def notification_text(template: str, action: Mapping[str, Any]) -> tuple[str, str]:
    subject, body = NOTIFICATION_TEMPLATES.get(
        template,
        (
            "A correction to your account",
            "We reversed an action taken on your account ({external_id}, {action_type}); contact us with questions.",
        ),
    )
    values = {"external_id": action.get("external_id", ""), "action_type": action.get("action_type", "")}
    return subject, body.format(**values)


def id_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63 else None


def deliver_notification(notification: Mapping[str, Any], *, idempotency_key: str) -> tuple[OutboundEmail, bool]:
    """Queue the customer's email for a `rollback.notification`, once per Idempotency-Key. Raises
    Customer.DoesNotExist when the action's subject is not one of the shop's customers."""
    action = notification["action"]
    number = customer_number(str(action.get("subject", "")))
    if number is None:
        raise Customer.DoesNotExist(f"{action.get('subject')!r} is not a customer subject")
    customer = Customer.objects.get(number=number)
    subject, body = notification_text(str(notification.get("template", "")), action)
    return OutboundEmail.objects.get_or_create(
        reference=idempotency_key,
        defaults={
            "customer": customer,
            "source": OutboundEmail.Source.ROLLBACK_NOTIFICATION,
            "template": str(notification.get("template", ""))[:100],
            "to": customer.email,
            "subject": subject,
            "body": body,
            "rollback_id": id_or_none(notification.get("rollback_id")),
            "step_id": id_or_none(notification.get("step_id")),
        },
    )


def receive_event(body: Mapping[str, Any], *, idempotency_key: str) -> tuple[ReceivedEvent, bool]:
    """Keep a rollback event once per signed key; a resend only counts the call."""
    found = body.get("rollback")
    rollback: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    with transaction.atomic():
        event, created = ReceivedEvent.objects.select_for_update().get_or_create(
            idempotency_key=idempotency_key,
            defaults={
                "event": str(body.get("event", ""))[:40],
                "rollback_id": id_or_none(rollback.get("id")),
                "state": str(rollback.get("state", ""))[:24],
                "body": dict(body),
            },
        )
        if not created:
            ReceivedEvent.objects.filter(pk=event.pk).update(calls=F("calls") + 1)
    return event, created


# --- Opening the books: what the agents' actions did on the shop's side (the demo seeds these) ---------------


def open_customer(number: int, *, name: str, email: str, status: str = Customer.Status.OPEN, **fields: Any) -> Customer:
    customer, _ = Customer.objects.get_or_create(
        number=number, defaults={"name": name, "email": email, "status": status, **fields}
    )
    return customer


def issue_refund(customer: Customer, reference: str, amount: Decimal, currency: str = "EUR") -> Refund:
    with transaction.atomic():
        refund, created = Refund.objects.get_or_create(
            reference=reference, defaults={"customer": customer, "amount": amount, "currency": currency}
        )
        if created:
            Customer.objects.filter(pk=customer.pk).update(balance=customer.balance + amount)
            customer.refresh_from_db(fields=["balance"])
    return refund


def grant_points(customer: Customer, reference: str, points: int, *, redeemed: int = 0) -> PointsGrant:
    """Credit points; `redeemed` of them the customer has spent since (their revocation is then refused)."""
    with transaction.atomic():
        grant, created = PointsGrant.objects.get_or_create(
            reference=reference, defaults={"customer": customer, "points": points}
        )
        if created:
            Customer.objects.filter(pk=customer.pk).update(points=customer.points + points - redeemed)
            customer.refresh_from_db(fields=["points"])
    return grant


def change_tier(customer: Customer, reference: str, to_tier: str) -> TierChange:
    with transaction.atomic():
        change, created = TierChange.objects.get_or_create(
            reference=reference, defaults={"customer": customer, "from_tier": customer.tier, "to_tier": to_tier}
        )
        if created:
            Customer.objects.filter(pk=customer.pk).update(tier=to_tier)
            customer.refresh_from_db(fields=["tier"])
    return change


def grant_benefits(customer: Customer, reference: str, names: list[str], used: tuple[str, ...] = ()) -> list[Benefit]:
    return [
        Benefit.objects.get_or_create(
            reference=reference, name=name, defaults={"customer": customer, "used": name in used}
        )[0]
        for name in names
    ]


def reinstate_membership(customer: Customer, reference: str, plan: str = "club") -> Membership:
    return Membership.objects.get_or_create(reference=reference, defaults={"customer": customer, "plan": plan})[0]


def update_record(customer: Customer, reference: str, name: str, after: dict[str, Any]) -> RecordUpdate:
    with transaction.atomic():
        existing = RecordUpdate.objects.filter(reference=reference).first()
        if existing is not None:
            return existing
        record, _ = Record.objects.select_for_update().get_or_create(customer=customer, name=name)
        update = RecordUpdate.objects.create(reference=reference, record=record, before=record.values, after=after)
        record.values = after
        record.save(update_fields=["values"])
    return update


def send_email(customer: Customer, reference: str, subject: str, body: str, *, read: bool = False) -> OutboundEmail:
    return OutboundEmail.objects.get_or_create(
        reference=reference,
        defaults={
            "customer": customer,
            "source": OutboundEmail.Source.AGENT,
            "to": customer.email,
            "subject": subject,
            "body": body,
            "read": read,
        },
    )[0]


def anchor_receiver_path() -> Path:
    return Path(settings.VAR_DIR) / "demo-anchor-receiver.jsonl"


def keep_anchor_line(line: bytes) -> bool:
    """Append an anchor line to the receiver's file unless it is already there (a retried post whose answer was
    lost); returns whether it was new. `verify_audit --anchor` reads the file like the product's own."""
    target = anchor_receiver_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "a+b") as kept:
        fcntl.flock(kept, fcntl.LOCK_EX)  # two posts at once must not both find the line absent
        kept.seek(0)
        if line in kept.read().splitlines():
            return False
        kept.write(line + b"\n")
        kept.flush()
        os.fsync(kept.fileno())
    return True
