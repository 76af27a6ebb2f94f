"""What integrators are told about the rollbacks of their actions (the contract's "Integrators are told").

A rollback's decisions and endings become `IntegratorEvent` rows in the transaction that moves it, one per
integrator whose `[integrators.KEY]` table names an `events_url` and whose actions are in the plan; after commit a
worker POSTs them, signed like every other call to an integrator, keyed `event-{rollback_id}-{event}`. They go out
in the order they were written, one at a time per rollback; 5xx, timeouts and refused connections are tried again
with backoff up to NOTIFY_MAX_ATTEMPTS, anything else fails at once. A receiver that fails never holds the rollback
back: nothing in the rollback waits for these.
"""

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.services import SYSTEM, record_event
from policies.methods.webhook import integrator_secret, post_signed
from policies.selectors import policy_of
from rollbacks.backoff import max_retry_delay, settle_attempt
from rollbacks.circuits import CircuitOpen, call_integrator, transient_status
from rollbacks.dispatch import queue_integrator_events
from rollbacks.guard import whole_id
from rollbacks.models import CommunicationStatus, IntegratorEvent, Rollback, RollbackState, SignOff, Step

logger = logging.getLogger(__name__)

REQUESTED = "rollback.requested"
# The states whose arrival an integrator is told of; the event is named after the state.
TOLD_STATES = frozenset(
    {
        RollbackState.AUTHORIZED,
        RollbackState.REJECTED,
        RollbackState.CANCELLED,
        RollbackState.COMPLETED,
        RollbackState.PARTIALLY_COMPLETED,
        RollbackState.FAILED,
    }
)
_CLAIM_SECONDS = settings.WEBHOOK_TIMEOUT_SECONDS + 30


def open_integrator_events(rollback: Rollback, event: str) -> list[IntegratorEvent]:
    """The event's rows for every listening integrator with actions in the plan, created once; call it inside the
    transaction that moves the rollback. Costs no query when no integrator of the policy listens."""
    manifest = policy_of(rollback.policy_version_id)
    urls = {key: table["events_url"] for key, table in manifest.integrators.items() if table.get("events_url")}
    if not urls:
        return []
    actions: dict[str, list[str]] = {}
    planned = (
        Step.objects.filter(rollback=rollback, is_loop=False, action__integrator__username__in=list(urls))
        .order_by("depth", "id")
        .values_list("action__integrator__username", "action__external_id")
    )
    for integrator, external_id in planned:
        actions.setdefault(integrator, []).append(external_id)
    if not actions:
        return []
    signoffs = [
        {"signer": signer, "role": role, "decision": decision, "comment": comment}
        for signer, role, decision, comment in SignOff.objects.filter(rollback=rollback)
        .order_by("id")
        .values_list("signer__username", "role", "decision", "comment")
    ]
    summary = {
        "id": rollback.pk,
        "trigger": rollback.trigger,
        "state": rollback.state,
        "reason": rollback.reason,
        "signoffs": signoffs,
    }
    body: dict[str, Any] = {"event": event, "rollback": summary}
    if event == f"rollback.{RollbackState.REJECTED}":
        rejections = [signoff["comment"] for signoff in signoffs if signoff["decision"] == "reject"]
        body["comment"] = rejections[-1] if rejections else ""
    rows = IntegratorEvent.objects.bulk_create(
        [
            IntegratorEvent(
                rollback=rollback,
                integrator=integrator,
                event=event,
                url=urls[integrator],
                body={**body, "actions": external_ids},
            )
            for integrator, external_ids in actions.items()
        ],
        ignore_conflicts=True,  # told once: a state reached a second time is not news
    )
    queue_integrator_events(rollback.pk)
    return rows


def send_integrator_events(rollback_id: int) -> float | None:
    """Send the rollback's pending events in order, one attempt each. Returns the seconds to wait before calling
    again (a transient failure, or another worker sending now), or None when nothing is left to send.

    As for communications, the attempt is claimed in one transaction and its result recorded in another, so no
    transaction stays open while the POST travels. A message naming no rollback of ours sends nothing: it can
    only ever send what a transition already wrote, so a hand-made one tells an integrator nothing new."""
    if whole_id(rollback_id) is None:
        return None
    while True:
        now = timezone.now()
        with transaction.atomic():
            event = (
                IntegratorEvent.objects.select_for_update(of=("self",))
                .select_related("rollback")
                .filter(rollback_id=rollback_id, status=CommunicationStatus.PENDING)
                .order_by("id")
                .first()
            )
            if event is None:
                return None
            if event.claimed_until is not None and event.claimed_until > now:
                return (event.claimed_until - now).total_seconds()
            event.attempts += 1
            event.claimed_until = now + timedelta(seconds=_CLAIM_SECONDS)
            event.save(update_fields=["attempts", "claimed_until"])

        try:
            error, transient = _post(event)
        except CircuitOpen as exc:
            # Nothing was sent: the attempt claimed for it is given back, and the events wait for the cool-down.
            wait = min(max(exc.retry_in, 1.0), max_retry_delay())
            with transaction.atomic():
                IntegratorEvent.objects.select_for_update().filter(pk=event.pk).get()
                event.attempts -= 1
                event.claimed_until = None
                event.save(update_fields=["attempts", "claimed_until"])
                record_event(
                    "integrator_event.paused",
                    actor=SYSTEM,
                    rollback_id=event.rollback_id,
                    data={"integrator_event": event.pk, "integrator": event.integrator, "retry_in": round(wait, 1)},
                )
            return wait

        with transaction.atomic():
            IntegratorEvent.objects.select_for_update().filter(pk=event.pk).get()
            outcome, retry_in = settle_attempt(event, error, transient)
            if outcome == "failed":
                logger.warning("Integrator event %s failed: %s", event.pk, error)
            record_event(
                f"integrator_event.{outcome}",
                actor=SYSTEM,
                rollback_id=event.rollback_id,
                data={
                    "integrator_event": event.pk,
                    "integrator": event.integrator,
                    "event": event.event,
                    "attempt": event.attempts,
                    "error": event.last_error,
                },
            )
        if retry_in is not None:
            return retry_in


def idempotency_key(event: IntegratorEvent) -> str:
    return f"event-{event.rollback_id}-{event.event}"


def _post(event: IntegratorEvent) -> tuple[str | None, bool]:
    """(None, _) when delivered, else (the error, whether trying again may help)."""
    integrator = policy_of(event.rollback.policy_version_id).integrators.get(event.integrator)
    if integrator is None:
        return f"the integrator {event.integrator!r} is not in the rollback's policy", False
    try:
        secret = integrator_secret(integrator)
    except RuntimeError as exc:
        return str(exc), False
    (status, answer), _ = call_integrator(
        event.integrator,
        integrator,
        lambda: post_signed(event.url, event.body, secret, idempotency_key=idempotency_key(event)),
        transient=transient_status,
    )
    if 200 <= status < 300:
        return None, False
    text = answer[:200].decode(errors="replace")
    if status == 0:
        return f"no answer: {text}", True
    return f"HTTP {status}: {text}", status >= 500
