"""What a rollback owes people besides the reversal itself: compensations per step and the trigger's notices.

Customers are told through the integrator that recorded their action (it holds their contact details): a signed
`rollback.notification` webhook to its `notify_url`, keyed `notify-{communication_id}` so a resend after a crash
is recognised. Internal and regulator audiences get one email per rollback. A 2xx answer or a mail server that
accepts the message is delivery; 4xx (or a 5xx SMTP reply) fails at once; 5xx, timeouts and refused connections
are tried again with backoff up to NOTIFY_MAX_ATTEMPTS.
"""

import json
import logging
import smtplib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from audit.services import SYSTEM, record_event
from policies.labels import label
from policies.manifest import Compensation, Manifest
from policies.methods.webhook import integrator_secret, post_signed
from policies.selectors import policy_of
from rollbacks.backoff import max_retry_delay, settle_attempt
from rollbacks.circuits import Calls, CircuitOpen, call_integrator, transient_status
from rollbacks.guard import communication_refusal, refuse_communication, refuse_unknown, whole_id
from rollbacks.models import Communication, CommunicationStatus, Rollback, Step, StepOutcome

logger = logging.getLogger(__name__)

CUSTOMER = "customer"
WEBHOOK = "webhook"
EMAIL = "email"

# A target whose reversal happened in this rollback is what the trigger's customer notice tells the customer about.
# Longer than one delivery can take (the webhook timeout, or the mail server's), so a live claim is never taken over.
_CLAIM_SECONDS = max(settings.WEBHOOK_TIMEOUT_SECONDS, settings.EMAIL_TIMEOUT or 0) + 30

_NOTICE_OUTCOMES = frozenset({StepOutcome.REVERSED, StepOutcome.COMPENSATION_FAILED, StepOutcome.MANUAL_DONE})


@dataclass(frozen=True)
class Delivery:
    communication_id: int
    rollback_id: int
    status: str
    retry_in: float | None = None  # a transient failure: send again after this many seconds


def _channel(audience: str) -> str:
    return WEBHOOK if audience == CUSTOMER else EMAIL


def _recipients(audience: str, step: Step | None, manifest: Manifest) -> list[str]:
    if audience == CUSTOMER:
        assert step is not None
        integrator = manifest.integrators.get(step.action.integrator.get_username(), {})
        return [integrator["notify_url"]] if integrator.get("notify_url") else []
    return list(manifest.communications.get(audience, ()))


def open_compensations(step: Step, compensations: Iterable[Compensation], manifest: Manifest) -> list[Communication]:
    """The step's compensation messages, created once (call inside the transaction that records the reversal)."""
    existing = set(Communication.objects.filter(step=step).values_list("audience", "template"))
    created = [
        Communication(
            rollback_id=step.rollback_id,
            step=step,
            audience=compensation.notify,
            channel=_channel(compensation.notify),
            template=compensation.template,
            recipients=_recipients(compensation.notify, step, manifest),
        )
        for compensation in compensations
        if (compensation.notify, compensation.template) not in existing
    ]
    return Communication.objects.bulk_create(created)


def open_trigger_communications(rollback: Rollback, manifest: Manifest) -> list[Communication]:
    """The trigger's `notify` messages not yet opened: one email per rollback for internal and regulator, and a
    customer notice per target action reversed in this rollback (so a target resolved later gets its own)."""
    trigger = manifest.triggers.get(rollback.trigger)
    if trigger is None or not trigger.notify:
        return []
    template = f"rollback_{rollback.trigger}"
    opened = Communication.objects.filter(rollback=rollback, template=template)
    created: list[Communication] = []
    for audience in trigger.notify:
        if audience == CUSTOMER:
            noticed = set(opened.filter(audience=CUSTOMER).values_list("step_id", flat=True))
            targets = (
                Step.objects.filter(rollback=rollback, depth=0, is_loop=False, outcome__in=_NOTICE_OUTCOMES)
                .exclude(pk__in=noticed)
                .select_related("action__integrator")
            )
            for step in targets:
                created.append(
                    Communication(
                        rollback=rollback,
                        step=step,
                        audience=CUSTOMER,
                        channel=WEBHOOK,
                        template=template,
                        recipients=_recipients(CUSTOMER, step, manifest),
                    )
                )
        elif not opened.filter(audience=audience, step__isnull=True).exists():
            created.append(
                Communication(
                    rollback=rollback,
                    audience=audience,
                    channel=EMAIL,
                    template=template,
                    recipients=_recipients(audience, None, manifest),
                )
            )
    return Communication.objects.bulk_create(created)


def send_communication(communication_id: Any, *, message: dict[str, Any] | None = None) -> Delivery | None:
    """One attempt at one message. None when there is no such message, or when its rollback's state does not let
    it go out now (rollbacks.guard; the refusal is audited and nothing is sent).

    The attempt is claimed in one transaction and its result recorded in another, so no transaction stays open
    while the message travels: on SQLite an open transaction would hold the whole database's write lock, and
    the receiver may be served by this same database. While one worker holds the claim, another waits."""
    claimed = claim_communication(communication_id, message=message)
    if not isinstance(claimed, Communication):
        return claimed
    return settle_communication(claimed, deliver_communication(claimed, policy_of(claimed.rollback.policy_version_id)))


def claim_communication(
    communication_id: Any, *, message: dict[str, Any] | None = None
) -> Communication | Delivery | None:
    """The message claimed for one attempt (its `attempts` counted), or what to do instead: None (refused, or no
    such message), or a Delivery (already sent or failed; or another worker holds it, with the wait)."""
    message = message or {"task": "send_communication"}
    now = timezone.now()
    with transaction.atomic():
        # The rollback is locked with the message: its state decides whether the message may go out at all.
        communication = (
            Communication.objects.select_for_update(of=("self", "rollback"))
            .select_related("rollback", "step__action__integrator")
            .filter(pk=whole_id(communication_id) or 0)
            .first()
        )
        if communication is None:
            refuse_unknown("rollback.communication.refused", communication_id, message=message)
            return None
        refusal = communication_refusal(communication)
        if refusal is not None:
            refuse_communication(communication, refusal, message=message)
            return None
        if communication.status != CommunicationStatus.PENDING:
            return Delivery(communication.pk, communication.rollback_id, communication.status)
        if communication.claimed_until is not None and communication.claimed_until > now:
            wait = (communication.claimed_until - now).total_seconds()
            return Delivery(communication.pk, communication.rollback_id, communication.status, retry_in=wait)
        communication.attempts += 1
        communication.claimed_until = now + timedelta(seconds=_CLAIM_SECONDS)
        communication.save(update_fields=["attempts", "claimed_until"])
    return communication


def deliver_communication(
    communication: Communication, manifest: Manifest, calls: Calls | None = None
) -> tuple[str | None, bool] | CircuitOpen:
    """Send a claimed message: (None, _) when delivered, else (the error, whether trying again may help), or the
    CircuitOpen that stopped it unsent. A customer's webhook touches no model, so the worker's pool may run it
    (within `calls`, a session of its integrator's slots); an email reads the rollback's steps."""
    try:
        return _deliver(communication, manifest, calls)
    except CircuitOpen as exc:
        return exc


def settle_communication(communication: Communication, result: tuple[str | None, bool] | CircuitOpen) -> Delivery:
    """Record how the claimed attempt ended, in a transaction of its own."""
    if isinstance(result, CircuitOpen):
        return _pause(communication, result)
    error, transient = result
    with transaction.atomic():
        Communication.objects.select_for_update().filter(pk=communication.pk).get()
        outcome, retry_in = settle_attempt(communication, error, transient)
        record_event(
            f"communication.{outcome}",
            actor=SYSTEM,
            action_id=communication.step.action_id if communication.step else None,
            rollback_id=communication.rollback_id,
            data={
                "communication": communication.pk,
                "audience": communication.audience,
                "channel": communication.channel,
                "template": communication.template,
                "attempt": communication.attempts,
                "error": communication.last_error,
            },
        )
    return Delivery(communication.pk, communication.rollback_id, communication.status, retry_in)


def _pause(communication: Communication, circuit: CircuitOpen) -> Delivery:
    """The integrator's circuit is open: nothing was sent, so the attempt claimed for it is given back."""
    wait = min(max(circuit.retry_in, 1.0), max_retry_delay())
    with transaction.atomic():
        Communication.objects.select_for_update().filter(pk=communication.pk).get()
        communication.attempts -= 1
        communication.claimed_until = None
        communication.save(update_fields=["attempts", "claimed_until"])
        record_event(
            "communication.paused",
            actor=SYSTEM,
            action_id=communication.step.action_id if communication.step else None,
            rollback_id=communication.rollback_id,
            data={"communication": communication.pk, "integrator": circuit.integrator, "retry_in": round(wait, 1)},
        )
    return Delivery(communication.pk, communication.rollback_id, communication.status, retry_in=wait)


def _deliver(communication: Communication, manifest: Manifest, calls: Calls | None) -> tuple[str | None, bool]:
    """(None, _) when delivered, else (the error, whether trying again may help)."""
    if not communication.recipients:
        return f"no recipient is configured for the {communication.audience} audience", False
    if communication.channel == WEBHOOK:
        return _post_notification(communication, manifest, calls)
    return _email(communication)


def notify_integrator(communication: Communication) -> str | None:
    """The integrator a customer's message goes to (None for an email)."""
    if communication.channel != WEBHOOK or communication.step is None:
        return None
    return communication.step.action.integrator.get_username()


def _post_notification(
    communication: Communication, manifest: Manifest, calls: Calls | None
) -> tuple[str | None, bool]:
    step = communication.step
    assert step is not None
    action = step.action
    integrator = manifest.integrators.get(action.integrator.get_username())
    if integrator is None:
        return f"the integrator {action.integrator.get_username()!r} is not in the policy", False
    try:
        secret = integrator_secret(integrator)
    except RuntimeError as exc:
        return str(exc), False
    body = {
        "event": "rollback.notification",
        "template": communication.template,
        "rollback_id": communication.rollback_id,
        "step_id": step.pk,
        "action": {
            "external_id": action.external_id,
            "action_type": action.action_type,
            "subject": action.subject,
            "payload": action.payload,
        },
    }

    def send() -> tuple[int, bytes]:
        return post_signed(communication.recipients[0], body, secret, idempotency_key=f"notify-{communication.pk}")

    if calls is not None:
        (status, answer), _ = calls.call(send, transient=transient_status)
    else:
        (status, answer), _ = call_integrator(
            action.integrator.get_username(), integrator, send, transient=transient_status
        )
    if 200 <= status < 300:
        return None, False
    text = answer[:200].decode(errors="replace")
    if status == 0:
        return f"no answer: {text}", True
    return f"HTTP {status}: {text}", status >= 500


def _email(communication: Communication) -> tuple[str | None, bool]:
    rollback = communication.rollback
    outcomes = Counter(Step.objects.filter(rollback=rollback).values_list("outcome", flat=True))
    summary = "\n".join(f"  {label(outcome)}: {count}" for outcome, count in sorted(outcomes.items()))
    # People read these: identifiers as the console shows them (policies.labels), not as stored.
    subject = f"Rollback #{rollback.pk} ({label(rollback.trigger)}): {label(communication.template)}"
    body = (
        f"Rollback #{rollback.pk}, trigger {label(rollback.trigger)}, requested for: {rollback.reason}\n"
        + (f"Reference: {rollback.reference}\n" if rollback.reference else "")
        + f"Steps by outcome:\n{summary}\n"
    )
    return deliver_email(subject, body, communication.recipients)


def deliver_email(subject: str, body: str, recipients: list[str]) -> tuple[str | None, bool]:
    """Hand one email to the mail server: (None, _) when it accepted it, else (the error, whether trying again
    may help). Shared with rollbacks.announcements."""
    try:
        accepted = send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        return f"recipients refused: {json.dumps({k: v[0] for k, v in exc.recipients.items()})}", min(codes) < 500
    except smtplib.SMTPResponseException as exc:
        return f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", not 500 <= exc.smtp_code < 600
    except OSError as exc:  # refused, timed out, disconnected (smtplib's errors are OSErrors too)
        return f"mail server unreachable: {exc}", True
    if not accepted:
        return "the mail backend accepted no message", True
    return None, False
