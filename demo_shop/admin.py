from django.contrib import admin

from demo_shop.models import (
    Benefit,
    Customer,
    Membership,
    OutboundEmail,
    PointsGrant,
    RecordUpdate,
    Refund,
    ReversalLedgerEntry,
    TierChange,
)


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin[Customer]):
    list_display = ["number", "name", "status", "balance", "points", "tier"]
    list_filter = ["status", "tier"]


@admin.register(Refund)
class RefundAdmin(admin.ModelAdmin[Refund]):
    list_display = ["reference", "customer", "amount", "currency", "status", "charged_back_at"]
    list_filter = ["status"]


@admin.register(PointsGrant)
class PointsGrantAdmin(admin.ModelAdmin[PointsGrant]):
    list_display = ["reference", "customer", "points", "status", "revoked_at"]


@admin.register(TierChange)
class TierChangeAdmin(admin.ModelAdmin[TierChange]):
    list_display = ["reference", "customer", "from_tier", "to_tier", "status"]


@admin.register(Benefit)
class BenefitAdmin(admin.ModelAdmin[Benefit]):
    list_display = ["reference", "customer", "name", "used", "status"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin[Membership]):
    list_display = ["reference", "customer", "plan", "status"]


@admin.register(RecordUpdate)
class RecordUpdateAdmin(admin.ModelAdmin[RecordUpdate]):
    list_display = ["reference", "record", "status", "restored_at"]


@admin.register(OutboundEmail)
class OutboundEmailAdmin(admin.ModelAdmin[OutboundEmail]):
    list_display = ["created_at", "to", "subject", "source", "template", "status"]
    list_filter = ["source", "status"]


@admin.register(ReversalLedgerEntry)
class ReversalLedgerEntryAdmin(admin.ModelAdmin[ReversalLedgerEntry]):
    """What the Rollback Console asked of the shop, read-only: the ledger is the shop's proof of exactly-once."""

    list_display = ["idempotency_key", "channel", "operation", "external_id", "calls", "applied", "answer"]
    list_filter = ["channel", "phase", "applied"]

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
