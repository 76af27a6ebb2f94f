"""People are told (the contract's "People are told"): when an item enters someone's inbox, they get one email
with its summary and a link to its console page; reminders and window warnings follow from the trigger's
`remind_after` and `warn_before_window`; `[people] chat_webhook_env` names a chat that gets the same text.

This module answers the reverse of the inbox's question: not "what may this person act on?" but "who may act on
this item?". Both come from rollbacks.rules: the candidates are the people holding the roles that could act
(`people_holding`), narrowed by the same answers the buttons use (`signing_role`, `carry_on_refusal`).

Announcing is an outbox. `announce_inbox_items` (beat, every minute, and a nudge after each transition that
opens an item) finds the open items that have no Announcement yet for a purpose, writes one with a delivery per
person (and one for the chat) in a single transaction, and queues the deliveries. The unique constraints on both
tables are the memory: a second run, a restarted worker or a redelivered task finds the rows and sends nothing
again. Each delivery is one attempt at a time, claimed as communications are; just before it goes out the item
is asked again, and a delivery whose item is done or no longer its person's is withdrawn, not sent.

The timings (remind_after, warn_before_window) and the chat come from the current policy, so a policy owner who
changes them changes them for what is already waiting; who may act comes from each rollback's own frozen facts.
"""

import logging
import os
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import CharField, DateTimeField, Exists, ExpressionWrapper, F, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Cast, Coalesce, Concat
from django.urls import reverse
from django.utils import timezone

from audit.services import SYSTEM, record_event
from policies.labels import label
from policies.manifest import Manifest
from policies.selectors import NoPolicyLoaded, current_policy
from rollbacks.backoff import settle_attempt
from rollbacks.communications import deliver_email
from rollbacks.dispatch import queue_announcement_deliveries
from rollbacks.guard import refuse_unknown, whole_id
from rollbacks.models import (
    NEEDS_PERSON_OUTCOMES,
    Announcement,
    AnnouncementDelivery,
    AnnouncementKind,
    AnnouncementPurpose,
    DeliveryChannel,
    DeliveryStatus,
    RemediationTask,
    Rollback,
    RollbackState,
    SignOff,
    SignoffDecision,
    Step,
)
from rollbacks.rules import (
    STARTED_STATES,
    carry_on_refusal,
    confirm_refusal,
    missing_roles,
    people_holding,
    resolve_refusal,
    retry_refusal,
    signing_role,
    signing_roles,
    target_approvers,
)

logger = logging.getLogger(__name__)

_K = AnnouncementKind
_P = AnnouncementPurpose
# Items looked at per kind and purpose in one run: a backlog (the first run over a large queue) is worked off a
# bounded slice a minute, oldest first, rather than in one run that outlasts the next.
BATCH = 500
# A delivery still pending this long after it was queued (or after its retry fell due) was lost with its
# message (a broker restart, a worker killed before it acknowledged): beat queues it again.
LOST_AFTER = timedelta(minutes=2)
# Longer than one delivery can take, so a live claim is never taken over.
_CLAIM = timedelta(seconds=max(settings.WEBHOOK_TIMEOUT_SECONDS, settings.EMAIL_TIMEOUT or 0) + 30)


@dataclass(frozen=True)
class Item:
    """An item of people's inboxes as it stands now: `key` names it as it entered (Announcement.item)."""

    kind: str
    key: str
    rollback: Rollback
    since: datetime
    step: Step | None = None
    remediation: RemediationTask | None = None


# Finding the items


def announce_inbox_items(now: datetime | None = None) -> list[int]:
    """Announce what entered inboxes, remind of what still waits, warn of windows about to close, and queue
    again the deliveries whose message was lost. Returns the ids queued again. Safe to run any number of times,
    and at once."""
    now = now or timezone.now()
    try:
        manifest = current_policy()[1]
    except NoPolicyLoaded:
        return []
    for item in _new_items():
        _announce(item, _P.NEW, manifest)
    for trigger, policy in manifest.triggers.items():
        if policy.remind_after is not None:
            # Counted from the announcement: an item found late (a backlog, a new policy) is not announced and
            # reminded in the same minute.
            for announcement in _due(_P.REMINDER, trigger, created_at__lte=now - policy.remind_after):
                _follow_up(announcement, _P.REMINDER, manifest, now)
        warn = policy.warn_before_window
        closing = {
            "rollback__window_closes_at__gt": now,
            "rollback__window_closes_at__lte": now + warn,
            # A request announced already inside the warning period said so in its first email (compose).
            "created_at__lt": ExpressionWrapper(F("rollback__window_closes_at") - warn, output_field=DateTimeField()),
        }
        for announcement in _due(_P.WINDOW_WARNING, trigger, kind=_K.SIGNOFF, **closing):
            _follow_up(announcement, _P.WINDOW_WARNING, manifest, now)
    # What _announce queued is on its way; beat queues again only what was lost on the way.
    lost = Q(claimed_until__isnull=True, created_at__lte=now - LOST_AFTER) | Q(claimed_until__lte=now - LOST_AFTER)
    due = list(
        AnnouncementDelivery.objects.filter(lost, status=DeliveryStatus.PENDING)
        .order_by("id")
        .values_list("pk", flat=True)[:BATCH]
    )
    with transaction.atomic():
        queue_announcement_deliveries(due)
    return due


def _new_items() -> Iterable[Item]:
    """The open items of every kind with no `new` announcement yet, oldest first, BATCH of each kind."""
    announced = Announcement.objects.filter(purpose=_P.NEW)
    signoffs = (
        Rollback.objects.filter(state=RollbackState.PENDING_AUTHORIZATION)
        .exclude(Exists(announced.filter(rollback=OuterRef("pk"), kind=_K.SIGNOFF)))
        .order_by("created_at", "id")[:BATCH]
    )
    for rollback in signoffs:
        yield _signoff_item(rollback)
    paused = (
        Rollback.objects.filter(state=RollbackState.PAUSED)
        .annotate(
            key=Concat(
                Value(f"{_K.CONFIRM_CASCADE}:"),
                Cast("pk", CharField()),
                Value(":"),
                Cast("confirmed_depth", CharField()),
                output_field=CharField(),
            )
        )
        .exclude(Exists(announced.filter(item=OuterRef("key"))))
        .order_by("updated_at", "id")[:BATCH]
    )
    for rollback in paused:
        yield _confirm_item(rollback)
    steps = (
        Step.objects.filter(outcome__in=NEEDS_PERSON_OUTCOMES, rollback__state__in=STARTED_STATES)
        .annotate(entered=Coalesce("finished_at", "rollback__created_at"))
        .exclude(Exists(announced.filter(step=OuterRef("pk"), kind=_K.STEP, since=OuterRef("entered"))))
        .select_related("rollback", "action")
        .order_by("entered", "id")[:BATCH]
    )
    for step in steps:
        yield _step_item(step)
    tasks = (
        RemediationTask.objects.filter(done_at__isnull=True)
        .exclude(Exists(announced.filter(remediation=OuterRef("pk"))))
        .select_related("step__rollback", "step__action")
        .order_by("created_at", "id")[:BATCH]
    )
    for task in tasks:
        yield _remediation_item(task)


def _signoff_item(rollback: Rollback) -> Item:
    return Item(_K.SIGNOFF, f"{_K.SIGNOFF}:{rollback.pk}", rollback, rollback.created_at)


def _confirm_item(rollback: Rollback) -> Item:
    key = f"{_K.CONFIRM_CASCADE}:{rollback.pk}:{rollback.confirmed_depth}"
    return Item(_K.CONFIRM_CASCADE, key, rollback, rollback.updated_at)


def _step_item(step: Step) -> Item:
    entered = step.finished_at or step.rollback.created_at
    key = f"{_K.STEP}:{step.pk}:{int(entered.timestamp() * 1_000_000)}"
    return Item(_K.STEP, key, step.rollback, entered, step=step)


def _remediation_item(task: RemediationTask) -> Item:
    return Item(_K.REMEDIATION, f"{_K.REMEDIATION}:{task.pk}", task.step.rollback, task.created_at, task.step, task)


def current_item(announcement: Announcement) -> Item | None:
    """The announced item as it stands now, or None when it has left the inboxes (done, or entered again as a
    new item: a step retried that failed again, a cascade paused one level further)."""
    rollback = Rollback.objects.filter(pk=announcement.rollback_id).first()
    if rollback is None:
        return None
    item: Item | None = None
    if announcement.kind == _K.SIGNOFF and rollback.state == RollbackState.PENDING_AUTHORIZATION:
        item = _signoff_item(rollback)
    elif announcement.kind == _K.CONFIRM_CASCADE and confirm_refusal(rollback) is None:
        item = _confirm_item(rollback)
    elif announcement.kind == _K.STEP and announcement.step_id is not None:
        step = Step.objects.select_related("action").get(pk=announcement.step_id)
        step.rollback = rollback
        if retry_refusal(rollback, step) is None or resolve_refusal(rollback, step) is None:
            item = _step_item(step)
    elif announcement.kind == _K.REMEDIATION and announcement.remediation_id is not None:
        task = RemediationTask.objects.select_related("step__action").get(pk=announcement.remediation_id)
        task.step.rollback = rollback
        if task.done_at is None:
            item = _remediation_item(task)
    return item if item is not None and item.key == announcement.item else None


def _due(purpose: str, trigger: str, **filters: Any) -> QuerySet[Announcement]:
    """`new` announcements of a trigger's items, still open as far as anyone looked, matching `filters`, that
    have no announcement of `purpose` yet."""
    return (
        Announcement.objects.filter(purpose=_P.NEW, closed_at__isnull=True, rollback__trigger=trigger, **filters)
        .exclude(Exists(Announcement.objects.filter(item=OuterRef("item"), purpose=purpose)))
        .order_by("since", "id")[:BATCH]
    )


def _follow_up(announcement: Announcement, purpose: str, manifest: Manifest, now: datetime) -> None:
    item = current_item(announcement)
    if item is None:
        Announcement.objects.filter(pk=announcement.pk).update(closed_at=now)
        return
    _announce(item, purpose, manifest)


# Who is told


def people_for(item: Item) -> list[Any]:
    """Everyone with an address who may act on the item now (rollbacks.rules), integrators never."""
    rollback = item.rollback
    approvers = target_approvers(rollback)
    if item.kind == _K.SIGNOFF:
        approved = SignOff.objects.filter(rollback=rollback)
        signed = set(approved.values_list("signer_id", flat=True))
        approvals = Counter(approved.filter(decision=SignoffDecision.APPROVE).values_list("role", flat=True))
        return [
            person
            for person in people_holding(missing_roles(rollback, approvals))
            if isinstance(
                signing_role(
                    person,
                    rollback,
                    signed=person.pk in signed,
                    approvals=approvals,
                    approved_error=person.pk in approvers,
                ),
                str,
            )
        ]
    return [
        person
        for person in people_holding(signing_roles(rollback))
        if carry_on_refusal(person, rollback, approved_error=person.pk in approvers) is None
    ]


def _announce(item: Item, purpose: str, manifest: Manifest) -> list[int]:
    """Write the item's announcement for `purpose` and its deliveries, once; the ids of the deliveries written
    (none when another run wrote the announcement first)."""
    people = people_for(item)
    trigger = manifest.triggers.get(item.rollback.trigger)
    subject, body = compose(item, purpose, warn_before_window=trigger.warn_before_window if trigger else None)
    chat = (
        manifest.chat_webhook_env if manifest.chat_webhook_env and os.environ.get(manifest.chat_webhook_env) else None
    )
    with transaction.atomic():
        try:
            with transaction.atomic():
                announcement = Announcement.objects.create(
                    item=item.key,
                    kind=item.kind,
                    purpose=purpose,
                    rollback=item.rollback,
                    step=item.step,
                    remediation=item.remediation,
                    since=item.since,
                    subject=subject[:200],
                    body=body,
                )
        except IntegrityError:
            return []  # announced by another run meanwhile
        deliveries = [
            AnnouncementDelivery(
                announcement=announcement, recipient=person, channel=DeliveryChannel.EMAIL, address=person.email
            )
            for person in people
        ]
        if chat is not None:
            deliveries.append(
                AnnouncementDelivery(announcement=announcement, channel=DeliveryChannel.CHAT, address=chat)
            )
        created = AnnouncementDelivery.objects.bulk_create(deliveries)
        record_event(
            "announcement.opened",
            actor=SYSTEM,
            action_id=item.step.action_id if item.step else None,
            rollback_id=item.rollback.pk,
            data={
                "announcement": announcement.pk,
                "item": item.key,
                "purpose": purpose,
                "to": [person.get_username() for person in people] + (["chat"] if chat else []),
            },
        )
        ids = [delivery.pk for delivery in created]
        queue_announcement_deliveries(ids)
    return ids


# What they read


def compose(item: Item, purpose: str, *, warn_before_window: timedelta | None = None) -> tuple[str, str]:
    """The subject and the text of an announcement (the email's body, and the chat's text). A request announced
    when its window closes within `warn_before_window` says so at once (no separate warning follows)."""
    rollback = item.rollback
    trigger = label(rollback.trigger).lower()
    headlines: dict[str, str] = {
        _K.SIGNOFF: f"Rollback #{rollback.pk} ({trigger}) waits for your sign-off",
        _K.CONFIRM_CASCADE: f"Rollback #{rollback.pk} ({trigger}) paused: its cascade waits for a confirmation",
        _K.STEP: f"Rollback #{rollback.pk} ({trigger}): a step needs a person",
        _K.REMEDIATION: f"Rollback #{rollback.pk} ({trigger}): a remediation task is open",
    }
    headline = headlines[item.kind]
    closes_soon = (
        item.kind == _K.SIGNOFF
        and rollback.window_closes_at is not None
        and warn_before_window is not None
        and rollback.window_closes_at <= timezone.now() + warn_before_window
    )
    if closes_soon and purpose == _P.NEW and rollback.window_closes_at is not None:
        headline += f"; its reversal window closes {rollback.window_closes_at.strftime('%Y-%m-%d %H:%M UTC')}"
    if purpose == _P.REMINDER:
        headline = f"Reminder: {headline}"
    elif purpose == _P.WINDOW_WARNING and rollback.window_closes_at is not None:
        closes = rollback.window_closes_at.strftime("%Y-%m-%d %H:%M UTC")
        headline = f"Reversal window closes {closes}: rollback #{rollback.pk} ({trigger}) still waits for sign-off"
    lines = [headline, "", f"What is being reversed: {summary(item)}", f"Reason: {rollback.reason}"]
    if rollback.window_closes_at is not None:
        lines.append(f"Earliest reversal window closes: {rollback.window_closes_at.strftime('%Y-%m-%d %H:%M UTC')}")
    if item.step is not None and item.kind == _K.STEP:
        outcome = label(item.step.outcome).lower()
        lines.append(f"Step {item.step.pk}: {outcome}" + (f" ({item.step.detail})" if item.step.detail else ""))
    if item.remediation is not None and item.remediation.instructions:
        lines.append(f"Instructions: {item.remediation.instructions}")
    lines += ["", f"Open it: {console_link(item)}"]
    return headline, "\n".join(lines) + "\n"


def summary(item: Item) -> str:
    """Action type, subject and amount of what the item is about: its step's action, or the rollback's first
    target and how many more."""
    if item.step is not None:
        return _action_text(item.step.action)
    targets = list(
        Step.objects.filter(rollback=item.rollback, depth=0, is_loop=False).select_related("action").order_by("id")[:1]
    )
    if not targets:
        return "nothing (no target actions)"
    count = item.rollback.plan.get("actions") if isinstance(item.rollback.plan, dict) else None
    more = f" and {count - 1} more" if isinstance(count, int) and count > 1 else ""
    return _action_text(targets[0].action) + more


def _action_text(action: Any) -> str:
    text = f"{action.action_type} for {action.subject}"
    if action.amount is not None:
        currency = action.payload.get("currency") if isinstance(action.payload, dict) else None
        text += f", {action.amount.normalize():f}" + (f" {currency}" if isinstance(currency, str) else "")
    return text


def console_link(item: Item) -> str:
    """The absolute address of the item's page: the rollback's, or the remediation list for a task."""
    base = settings.CONSOLE_BASE_URL.rstrip("/")
    if item.kind == _K.REMEDIATION:
        return base + reverse("console:remediation")
    return base + reverse("console:rollback", args=[item.rollback.pk])


# Sending


def send_announcement(delivery_id: Any, *, message: dict[str, Any] | None = None) -> float | None:
    """One attempt at one delivery. Returns the seconds to wait before trying again (a transient failure), else
    None: sent, failed, withdrawn, sent already, claimed by another worker, or no such delivery (audited).

    As for communications, the attempt is claimed in one transaction and its result recorded in another, so no
    transaction stays open while the message travels."""
    message = message or {"task": "send_announcement"}
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            AnnouncementDelivery.objects.select_for_update(of=("self",))
            .select_related("announcement", "recipient")
            .filter(pk=whole_id(delivery_id) or 0)
            .first()
        )
        if delivery is None:
            refuse_unknown("announcement.refused", delivery_id, message=message)
            return None
        if delivery.status != DeliveryStatus.PENDING:
            return None  # a redelivered task: sent (or settled) already
        if delivery.claimed_until is not None and delivery.claimed_until > now:
            return None  # another worker sends it now, or it waits for its retry
        if not _still_theirs(delivery):
            delivery.status = DeliveryStatus.WITHDRAWN
            delivery.save(update_fields=["status"])
            _record(delivery, "withdrawn")
            return None
        delivery.attempts += 1
        delivery.claimed_until = now + _CLAIM
        delivery.save(update_fields=["attempts", "claimed_until"])

    error, transient = _deliver(delivery)

    with transaction.atomic():
        AnnouncementDelivery.objects.select_for_update().filter(pk=delivery.pk).get()
        outcome, retry_in = settle_attempt(delivery, error, transient)
        if retry_in is not None:
            # Beat leaves it alone until then; the task's own retry comes back at that time.
            delivery.claimed_until = timezone.now() + timedelta(seconds=retry_in)
            delivery.save(update_fields=["claimed_until"])
        _record(delivery, outcome)
    return retry_in


def _still_theirs(delivery: AnnouncementDelivery) -> bool:
    """The item is still open, and (for an email) its person may still act on it."""
    item = current_item(delivery.announcement)
    if item is None:
        return False
    if delivery.recipient_id is None:
        return True
    return any(person.pk == delivery.recipient_id for person in people_for(item))


def _deliver(delivery: AnnouncementDelivery) -> tuple[str | None, bool]:
    announcement = delivery.announcement
    if delivery.channel == DeliveryChannel.EMAIL:
        return deliver_email(announcement.subject, announcement.body, [delivery.address])
    url = os.environ.get(delivery.address, "")
    if not url:
        return f"the environment variable {delivery.address} (the chat's webhook) is not set", False
    return post_chat(url, announcement.body)


def post_chat(url: str, text: str) -> tuple[str | None, bool]:
    """POST `{"text": ...}` to an incoming webhook (Slack, Mattermost, Teams and others read that shape)."""
    request = urllib.request.Request(
        url, data=orjson.dumps({"text": text}), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.WEBHOOK_TIMEOUT_SECONDS) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        return f"no answer: {exc}", True
    if 200 <= status < 300:
        return None, False
    return f"HTTP {status}", status >= 500 or status == 429


def _record(delivery: AnnouncementDelivery, outcome: str) -> None:
    announcement = delivery.announcement
    record_event(
        f"announcement.{outcome}",
        actor=SYSTEM,
        action_id=None,
        rollback_id=announcement.rollback_id,
        data={
            "delivery": delivery.pk,
            "announcement": announcement.pk,
            "item": announcement.item,
            "purpose": announcement.purpose,
            "channel": delivery.channel,
            "to": delivery.recipient.get_username() if delivery.recipient is not None else "chat",
            "attempt": delivery.attempts,
            "error": delivery.last_error,
        },
    )
