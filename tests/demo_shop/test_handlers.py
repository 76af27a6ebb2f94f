from demo_shop import handlers, services
from demo_shop.models import Benefit, Membership, ReversalLedgerEntry
from policies.methods.base import ReversalCall


def call(phase: str, external_id: str, action_type: str, *, step_id: int = 40) -> ReversalCall:
    return ReversalCall(
        phase=phase,  # type: ignore[arg-type]
        step_id=step_id,
        rollback_id=4,
        trigger="incident",
        operation="",
        action={"external_id": external_id, "action_type": action_type, "subject": "customer:1001", "payload": {}},
        config={"method": "python"},
    )


def test_benefits_are_withdrawn_and_used_ones_stay_used(books):
    for phase in ("check", "reverse", "verify"):
        assert handlers.restore_benefits(call(phase, "run-1/benefits", "benefits.reevaluate")).status == "ok"
    benefits = {b.name: (b.status, b.used) for b in Benefit.objects.filter(reference="run-1/benefits")}
    assert benefits == {"free_shipping": ("withdrawn", False), "lounge": ("withdrawn", True)}


def test_verify_fails_before_the_benefits_are_withdrawn(books):
    result = handlers.restore_benefits(call("verify", "run-1/benefits", "benefits.reevaluate"))
    assert result.status == "failed"


def test_a_membership_reinstatement_is_suspended_again(books):
    assert handlers.suspend_membership(call("reverse", "run-1/membership", "membership.reinstate")).status == "ok"
    assert Membership.objects.get(reference="run-1/membership").status == "suspended"
    assert handlers.suspend_membership(call("verify", "run-1/membership", "membership.reinstate")).status == "ok"


def test_a_record_gets_its_previous_values_back(books):
    assert handlers.restore_record(call("reverse", "run-1/address", "record.update")).status == "ok"
    books.record.record.refresh_from_db()
    assert books.record.record.values == {}


def test_a_record_changed_again_since_the_update_is_not_overwritten(books):
    services.update_record(books.ada, "run-1/address-2", "shipping_address", {"city": "Nantes"})
    result = handlers.restore_record(call("reverse", "run-1/address", "record.update"))
    assert result.status == "failed"
    assert "changed again" in result.detail
    books.record.record.refresh_from_db()
    assert books.record.record.values == {"city": "Nantes"}


def test_a_handler_step_run_twice_applies_its_effect_once(books):
    first = handlers.suspend_membership(call("reverse", "run-1/membership", "membership.reinstate", step_id=41))
    Membership.objects.filter(reference="run-1/membership").update(status="active")  # someone reactivates it
    second = handlers.suspend_membership(call("reverse", "run-1/membership", "membership.reinstate", step_id=41))
    assert first.status == second.status == "ok"
    assert Membership.objects.get(reference="run-1/membership").status == "active"
    entry = ReversalLedgerEntry.objects.get(idempotency_key="step-41-reverse")
    assert (entry.channel, entry.calls, entry.applied) == ("python", 2, True)


def test_a_handler_names_a_missing_row(books):
    result = handlers.suspend_membership(call("check", "run-9/none", "membership.reinstate"))
    assert result.status == "failed"
    assert "run-9/none" in result.detail
