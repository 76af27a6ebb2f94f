"""The demo's story: who the shop's customers are, what its agents did to them, and what is already filed.

Every action goes through `actions.services.record_actions`, as the shop's agents would post them, and the shop
opens the matching rows in its own books first (a refund row for each refund action, and so on). Times are laid
out from an anchor fixed at the first run (the first customer's creation), so running the demo again posts the
very same bodies and changes nothing.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from actions.models import Action, ActionLink
from actions.services import add_links, record_actions
from demo_shop import services
from demo_shop.models import Customer
from demo_shop.people import INTEGRATOR
from rollbacks.models import Rollback
from rollbacks.services import request_rollback

# --- The customers and what the agents did -----------------------------------------------------------------


@dataclass
class Story:
    anchor: datetime
    actions: list[dict[str, Any]] = field(default_factory=list)
    loops: list[tuple[str, str]] = field(default_factory=list)  # (action, the action it re-caused) after the fact

    def act(
        self,
        external_id: str,
        action_type: str,
        customer: Customer | str,
        payload: dict[str, Any],
        *,
        ago: timedelta,
        approver: str = "alice",
        ticket: str = "",
        caused_by: tuple[str, ...] = (),
    ) -> None:
        executed_at = self.anchor - ago
        self.actions.append(
            {
                "external_id": external_id,
                "action_type": action_type,
                "subject": customer.subject if isinstance(customer, Customer) else customer,
                "payload": payload,
                "executed_at": executed_at.isoformat(),
                "approved_by": approver,
                "approved_at": (executed_at - timedelta(seconds=45)).isoformat(),
                "approval_context": {"ticket": ticket} if ticket else {},
                "caused_by": list(caused_by),
            }
        )


CUSTOMERS = [
    # number, name, status, starting points, starting tier
    (1001, "Ada Lovelace", Customer.Status.OPEN, 120, "silver"),
    (1002, "Ben Okafor", Customer.Status.OPEN, 0, "bronze"),
    (1003, "Colm Byrne", Customer.Status.CLOSED, 0, "bronze"),
    (1004, "Dana Whitfield", Customer.Status.OPEN, 0, "bronze"),
    (1005, "Emil Novak", Customer.Status.OPEN, 300, "silver"),
    (1006, "Farah Haddad", Customer.Status.OPEN, 0, "bronze"),
    (1007, "Goran Petrov", Customer.Status.OPEN, 0, "bronze"),
    (1008, "Hana Sato", Customer.Status.OPEN, 0, "bronze"),
    (1009, "Ivo Brandt", Customer.Status.OPEN, 0, "bronze"),
    (1010, "Jade Moreau", Customer.Status.OPEN, 0, "bronze"),
]


def _customers() -> dict[int, Customer]:
    customers = {}
    for number, name, status, points, tier in CUSTOMERS:
        email = name.split()[0].lower() + "@example.com"
        customers[number] = services.open_customer(
            number, name=name, email=email, status=status, points=points, tier=tier
        )
    return customers


def _refund_chain(
    story: Story,
    customer: Customer,
    run: str,
    amount: str,
    points: int,
    *,
    ago: timedelta,
    approver: str,
    to_tier: str,
    benefits: list[str],
    used: tuple[str, ...] = (),
    redeemed: int = 0,
) -> None:
    """refund -> loyalty points -> tier upgrade -> benefits re-evaluation, on both sides of the webhook."""
    refund, grant, tier, reeval = (f"{run}/refund-1", f"{run}/points-1", f"{run}/tier-1", f"{run}/benefits-1")
    services.issue_refund(customer, refund, Decimal(amount))
    services.grant_points(customer, grant, points, redeemed=redeemed)
    change = services.change_tier(customer, tier, to_tier)
    services.grant_benefits(customer, reeval, benefits, used=used)
    story.act(
        refund,
        "refund.issue",
        customer,
        {"amount": amount, "currency": "EUR", "reason": "late delivery"},
        ago=ago,
        approver=approver,
        ticket=f"T-{customer.number}",
    )
    story.act(
        grant,
        "loyalty.points_grant",
        customer,
        {"points": points},
        ago=ago - timedelta(seconds=5),
        approver=approver,
        caused_by=(refund,),
    )
    story.act(
        tier,
        "tier.upgrade",
        customer,
        {"from": change.from_tier, "to": to_tier},
        ago=ago - timedelta(seconds=10),
        approver=approver,
        caused_by=(grant,),
    )
    story.act(
        reeval,
        "benefits.reevaluate",
        customer,
        {"granted": benefits},
        ago=ago - timedelta(seconds=15),
        approver=approver,
        caused_by=(tier,),
    )


def build_story() -> Story:
    """Open the shop's rows and list the actions its agents posted. Idempotent on the shop's side."""
    c = _customers()
    story = Story(anchor=c[1001].created_at.replace(minute=0, second=0, microsecond=0))
    hours, days = timedelta(hours=1), timedelta(days=1)

    # Ada: a goodwill refund that earned points, lifted her to gold and re-evaluated her benefits.
    _refund_chain(
        story,
        c[1001],
        "run-101",
        "25.00",
        250,
        ago=2 * days,
        approver="alice",
        to_tier="gold",
        benefits=["free_shipping", "lounge_access"],
        used=("lounge_access",),
    )
    services.send_email(
        c[1001], "run-101/email-1", "Your refund is on its way", "We refunded EUR 25.00 for your late delivery."
    )
    story.act(
        "run-101/email-1",
        "email.send",
        c[1001],
        {"template": "refund_confirmation"},
        ago=2 * days - timedelta(minutes=1),
        approver="alice",
    )

    # Ben: the same chain, then a membership reinstatement that re-applied the upgrade (a cycle in the graph),
    # and a shipping address the agent changed.
    _refund_chain(
        story,
        c[1002],
        "run-102",
        "60.00",
        600,
        ago=30 * hours,
        approver="bob",
        to_tier="silver",
        benefits=["free_shipping"],
    )
    services.reinstate_membership(c[1002], "run-102/membership-1")
    story.act(
        "run-102/membership-1",
        "membership.reinstate",
        c[1002],
        {"plan": "club"},
        ago=30 * hours - timedelta(seconds=20),
        approver="bob",
        caused_by=("run-102/benefits-1",),
    )
    story.loops.append(("run-102/membership-1", "run-102/tier-1"))
    address = {"street": "12 Quay Street", "city": "Galway", "postcode": "H91 X2Y"}
    services.update_record(c[1002], "run-102/record-1", "shipping_address", address)
    story.act(
        "run-102/record-1",
        "record.update",
        c[1002],
        {"record": "shipping_address", "after": address},
        ago=29 * hours,
        approver="bob",
        ticket="T-1002",
    )

    # Colm closed his account after his refund: a chargeback cannot reach it (prerequisites unmet).
    services.issue_refund(c[1003], "run-103/refund-1", Decimal("40.00"))
    story.act(
        "run-103/refund-1",
        "refund.issue",
        c[1003],
        {"amount": "40.00", "currency": "EUR"},
        ago=3 * days,
        approver="alice",
        ticket="T-1003",
    )

    # Dana already spent most of the points her refund earned: they cannot be revoked.
    _refund_chain(
        story,
        c[1004],
        "run-104",
        "80.00",
        500,
        ago=26 * hours,
        approver="alice",
        to_tier="silver",
        benefits=["priority_support"],
        redeemed=400,
    )

    # Emil's refund is 40 days old: past its 30-day window, a reversal needs an executive too.
    services.issue_refund(c[1005], "run-090/refund-1", Decimal("120.00"))
    story.act(
        "run-090/refund-1",
        "refund.issue",
        c[1005],
        {"amount": "120.00", "currency": "EUR"},
        ago=40 * days,
        approver="bob",
        ticket="T-1005",
    )

    # A supplier payment: money that only the receiving bank can return.
    story.act(
        "run-201/wire-1",
        "wire.transfer",
        "supplier:acme-logistics",
        {"amount": "12500.00", "currency": "EUR", "iban": "DE89 3704 0044 0532 0130 00"},
        ago=20 * hours,
        approver="bob",
        ticket="FIN-311",
    )

    # An agent run that refunded five customers twice within minutes: an incident to roll back in bulk.
    for index, number in enumerate(range(1006, 1011), start=1):
        reference = f"run-077/refund-{index}"
        services.issue_refund(c[number], reference, Decimal("15.00"))
        story.act(
            reference,
            "refund.issue",
            c[number],
            {"amount": "15.00", "currency": "EUR", "reason": "duplicate"},
            ago=6 * hours - timedelta(minutes=index),
            approver="bob",
            ticket="T-7700",
        )
    return story


# Rollbacks already filed when the demo opens, waiting in someone's queue: (requester, trigger, actions, reason).
REQUESTS = [
    (
        "alice",
        "reviewer_error",
        ["run-101/refund-1"],
        "I approved a goodwill refund for Ada Lovelace that support had already granted by voucher.",
    ),
    (
        INTEGRATOR,
        "customer_request",
        ["run-103/refund-1"],
        "Colm Byrne disputes the refund: he asked for an exchange, not his money back.",
    ),
    (
        "ines",
        "incident",
        [f"run-077/refund-{index}" for index in range(1, 6)],
        "INC-7700: agent run 77 refunded five customers a second time within minutes.",
    ),
]


@dataclass(frozen=True)
class SeedResult:
    customers: int
    actions_recorded: int
    actions_total: int
    rollbacks_filed: int


def seed_story() -> SeedResult:
    """Seed the shop's books, record the agents' actions and file the waiting requests, all or nothing; a second
    run changes nothing."""
    with transaction.atomic():
        story = build_story()
        shop = User.objects.get(username=INTEGRATOR)
        known = set(Action.objects.filter(integrator=shop).values_list("external_id", flat=True))
        new = [item for item in story.actions if item["external_id"] not in known]
        if new:
            record_actions(shop, new)
        for external_id, re_caused in story.loops:
            action = Action.objects.get(integrator=shop, external_id=external_id)
            if not ActionLink.objects.filter(upstream=action, downstream__external_id=re_caused).exists():
                add_links(action, [re_caused], actor=INTEGRATOR)
        filed = 0
        for requester, trigger, external_ids, reason in REQUESTS:
            if Rollback.objects.filter(trigger=trigger, reason=reason).exists():
                continue
            ids = list(
                Action.objects.filter(integrator=shop, external_id__in=external_ids).values_list("pk", flat=True)
            )
            request_rollback(
                requester=User.objects.get(username=requester), trigger=trigger, reason=reason, actions=ids
            )
            filed += 1
    return SeedResult(
        customers=Customer.objects.count(),
        actions_recorded=len(new),
        actions_total=Action.objects.filter(integrator=shop).count(),
        rollbacks_filed=filed,
    )
