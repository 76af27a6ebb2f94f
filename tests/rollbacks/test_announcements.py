"""People are told: one email per item to each person who may act on it, with its summary and a link; reminders
after `remind_after` and window warnings within `warn_before_window`, each once, however often beat runs or a
task is delivered again; the chat webhook gets the same text; nobody hears of their own request or of work they
may not do, and integrators and people without an address hear nothing."""

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from policies.services import load_policy
from rollback_console.celery import app as celery_app
from rollbacks import announcements, services
from rollbacks.models import Announcement, AnnouncementDelivery
from tests.rollbacks.executing import TEST_MANIFEST, authorized, chain, shop_fixture, worker_fixture  # noqa: F401
from tests.rollbacks.requesting import assert_audit_event, colleague, events, record

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock():  # type: ignore[no-untyped-def]
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def deliver_all() -> list[Any]:
    """Send every pending delivery once, as the workers would; the results by delivery id."""
    return [
        announcements.send_announcement(pk)
        for pk in AnnouncementDelivery.objects.filter(status="pending").order_by("pk").values_list("pk", flat=True)
    ]


def announce_and_send() -> None:
    announcements.announce_inbox_items()
    deliver_all()


def mailed(mailoutbox: list[Any]) -> list[tuple[str, str]]:
    return sorted((message.to[0], message.subject) for message in mailoutbox)


def reviewer_error(cast: Any, *, requester: Any = None, approved_by: str = "alice") -> Any:
    action = record(cast.shop, approved_by=approved_by)
    return services.request_rollback(
        requester=requester or cast.bob, trigger="reviewer_error", reason="approved by mistake", actions=[action.pk]
    )


def test_each_person_who_may_sign_gets_one_email_with_the_summary_and_a_link(cast, mailoutbox, clock):
    rollback = reviewer_error(cast)

    announce_and_send()

    assert sorted(message.to[0] for message in mailoutbox) == ["vera@example.com", "victor@example.com"]
    message = mailoutbox[0]
    assert message.subject == f"Rollback #{rollback.pk} (reviewer error) waits for your sign-off"
    assert "What is being reversed: refund.issue for customer:1001, 25 EUR" in message.body
    assert f"Open it: http://127.0.0.1:8000/console/rollbacks/{rollback.pk}/" in message.body
    assert_audit_event("announcement.sent", rollback_id=rollback.pk)
    assert_audit_event("announcement.opened", rollback_id=rollback.pk)


def test_the_link_uses_the_console_base_url(cast, mailoutbox, settings):
    settings.CONSOLE_BASE_URL = "https://rollbacks.example.com/"
    rollback = reviewer_error(cast)

    announce_and_send()

    assert f"Open it: https://rollbacks.example.com/console/rollbacks/{rollback.pk}/" in mailoutbox[0].body


def test_nothing_is_sent_twice_after_a_restart_or_a_redelivered_task(cast, mailoutbox):
    reviewer_error(cast)
    announce_and_send()
    sent = mailed(mailoutbox)
    delivered = list(AnnouncementDelivery.objects.values_list("pk", flat=True))

    announcements.announce_inbox_items()  # beat again, a nudge, a restarted worker
    for pk in delivered:  # every message delivered again by the broker
        celery_app.tasks["rollbacks.tasks.send_announcement"].apply(args=(pk,))
    deliver_all()

    assert mailed(mailoutbox) == sent
    assert Announcement.objects.count() == 1


def test_nobody_is_told_of_their_own_request_or_of_a_sign_off_they_may_not_give(cast, mailoutbox):
    # rita reviews and verifies: she files this one, so she may not sign it.
    rita = colleague("rita", "reviewer", "verifier")
    rita.email = "rita@example.com"
    rita.save()
    # ava approved the action it reverses: for reviewer_error she may not verify it.
    ava = colleague("ava", "reviewer", "verifier")
    ava.email = "ava@example.com"
    ava.save()

    reviewer_error(cast, requester=rita, approved_by="ava")
    announce_and_send()

    assert sorted(message.to[0] for message in mailoutbox) == ["vera@example.com", "victor@example.com"]


def test_integrators_and_people_without_an_address_get_nothing(cast, mailoutbox):
    quiet = colleague("quiet", "verifier")  # no email
    robot = colleague("robot", "verifier", "integrator")
    robot.email = "robot@example.com"
    robot.save()
    assert quiet.email == ""

    reviewer_error(cast)
    announce_and_send()

    assert sorted(message.to[0] for message in mailoutbox) == ["vera@example.com", "victor@example.com"]
    assert not AnnouncementDelivery.objects.filter(recipient__in=[quiet, robot]).exists()


def test_a_message_whose_item_was_done_before_it_went_out_is_withdrawn(cast, mailoutbox):
    rollback = reviewer_error(cast)
    announcements.announce_inbox_items()
    services.sign_off(rollback.pk, signer=cast.vera, decision="approve")

    deliver_all()

    assert mailoutbox == []
    assert set(AnnouncementDelivery.objects.values_list("status", flat=True)) == {"withdrawn"}
    assert_audit_event("announcement.withdrawn", rollback_id=rollback.pk)


def test_a_pending_item_is_reminded_once_after_remind_after(cast, mailoutbox, clock):
    rollback = reviewer_error(cast)  # demo policy: reviewer_error remind_after = "4h"
    announce_and_send()
    mailoutbox.clear()

    clock.move_to(T0 + timedelta(hours=3, minutes=59))
    announce_and_send()
    assert mailoutbox == []

    clock.move_to(T0 + timedelta(hours=4, minutes=1))
    announce_and_send()
    assert mailed(mailoutbox) == [
        ("vera@example.com", f"Reminder: Rollback #{rollback.pk} (reviewer error) waits for your sign-off"),
        ("victor@example.com", f"Reminder: Rollback #{rollback.pk} (reviewer error) waits for your sign-off"),
    ]

    clock.move_to(T0 + timedelta(hours=9))
    announce_and_send()
    announce_and_send()
    assert len(mailoutbox) == 2


def test_a_request_decided_before_its_reminder_is_not_reminded(cast, mailoutbox, clock):
    rollback = reviewer_error(cast)
    announce_and_send()
    services.sign_off(rollback.pk, signer=cast.vera, decision="reject")
    mailoutbox.clear()

    clock.move_to(T0 + timedelta(hours=5))
    announce_and_send()

    assert mailoutbox == []
    assert Announcement.objects.get(item=f"signoff:{rollback.pk}").closed_at is not None


def test_signers_are_warned_once_when_the_window_will_close_within_warn_before_window(cast, mailoutbox, clock):
    # refund.issue's window is 30 days from execution: this one closes 30 hours from now.
    action = record(cast.shop, executed_at=T0 - timedelta(days=30) + timedelta(hours=30))
    rollback = services.request_rollback(
        requester=cast.shop, trigger="customer_request", reason="the customer asked", actions=[action.pk]
    )
    announce_and_send()
    assert mailed(mailoutbox) == [
        ("carl@example.com", f"Rollback #{rollback.pk} (customer request) waits for your sign-off")
    ]
    mailoutbox.clear()

    clock.move_to(T0 + timedelta(hours=5, minutes=59))  # closes in 24h01: not yet (the reminder is due, though)
    announce_and_send()
    assert [subject for _, subject in mailed(mailoutbox)] == [
        f"Reminder: Rollback #{rollback.pk} (customer request) waits for your sign-off"
    ]
    mailoutbox.clear()

    clock.move_to(T0 + timedelta(hours=6, minutes=1))
    announce_and_send()
    clock.move_to(T0 + timedelta(hours=20))
    announce_and_send()

    assert mailed(mailoutbox) == [
        (
            "carl@example.com",
            f"Reversal window closes 2026-12-02 15:00 UTC: rollback #{rollback.pk} (customer request) "
            "still waits for sign-off",
        )
    ]


def test_a_paused_cascade_is_announced_to_whoever_may_confirm_it(
    cast, shop, worker, mailoutbox, django_capture_on_commit_callbacks
):
    refund, _points = chain(cast.shop, "refund.issue", "loyalty.points_grant", prefix="announce-paused")
    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund], depth=0)
    worker()
    rollback.refresh_from_db()
    assert rollback.state == "paused"

    announce_and_send()

    # shop requested it (and is an integrator); carl signs customer_request, so carl may carry it on.
    assert mailed(mailoutbox) == [
        ("carl@example.com", f"Rollback #{rollback.pk} (customer request) paused: its cascade waits for a confirmation")
    ]


def test_a_failed_step_and_its_remediation_task_are_announced(
    cast, shop, worker, mailoutbox, django_capture_on_commit_callbacks
):
    [letter] = chain(cast.shop, "letter.send", prefix="announce-manual")
    rollback = authorized(cast, django_capture_on_commit_callbacks, [letter])
    worker()

    announce_and_send()

    subjects = sorted(subject for _, subject in mailed(mailoutbox))
    assert subjects == [
        f"Rollback #{rollback.pk} (customer request): a remediation task is open",
        f"Rollback #{rollback.pk} (customer request): a step needs a person",
    ]
    assert {message.to[0] for message in mailoutbox} == {"carl@example.com"}
    remediation = next(message for message in mailoutbox if "remediation" in message.subject)
    assert "Instructions: Call the customer and withdraw the letter." in remediation.body
    assert "http://127.0.0.1:8000/console/remediation/" in remediation.body


def test_the_transitions_that_open_items_nudge_the_announcer(
    cast, announcements_queued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        reviewer_error(cast)

    assert announcements_queued.runs == [1]


class ChatHook:
    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.posts: list[tuple[str, dict[str, Any]]] = []

    def urlopen(self, request: Any, timeout: float) -> Any:
        import urllib.error

        self.posts.append((request.full_url, json.loads(request.data)))
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if status >= 400:
            raise urllib.error.HTTPError(request.full_url, status, "no", {}, None)  # type: ignore[arg-type]
        return _Answer(status)


class _Answer:
    def __init__(self, status: int) -> None:
        self.status = status

    def __enter__(self) -> "_Answer":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


def test_the_chat_webhook_gets_the_same_text_and_its_failures_are_retried_without_blocking_mail(
    cast, mailoutbox, monkeypatch
):
    monkeypatch.setenv("ROLLBACK_CHAT_WEBHOOK_URL", "https://chat.example.com/hooks/abc")
    hook = ChatHook([503, 200])
    monkeypatch.setattr("rollbacks.announcements.urllib.request.urlopen", hook.urlopen)
    rollback = reviewer_error(cast)
    announcements.announce_inbox_items()

    first = deliver_all()

    assert len(mailoutbox) == 2, "mail goes out whatever the chat answers"
    chat = AnnouncementDelivery.objects.get(channel="chat")
    assert chat.status == "pending" and chat.attempts == 1 and chat.last_error == "HTTP 503"
    assert [retry for retry in first if retry is not None] == [1.0]  # the existing backoff

    with time_machine.travel(chat.claimed_until + timedelta(seconds=1), tick=False):
        announcements.send_announcement(chat.pk)

    chat.refresh_from_db()
    assert chat.status == "sent" and chat.attempts == 2
    [(url, body), _] = hook.posts
    assert url == "https://chat.example.com/hooks/abc"
    assert body["text"].startswith(f"Rollback #{rollback.pk} (reviewer error) waits for your sign-off")
    assert f"/console/rollbacks/{rollback.pk}/" in body["text"]
    # The trail names the variable, never the URL it holds.
    assert "hooks/abc" not in json.dumps([event.data for event in events(rollback_id=rollback.pk)])


def test_without_the_chat_variable_set_no_chat_message_is_written(cast, monkeypatch):
    monkeypatch.delenv("ROLLBACK_CHAT_WEBHOOK_URL", raising=False)
    reviewer_error(cast)
    announcements.announce_inbox_items()
    assert not AnnouncementDelivery.objects.filter(channel="chat").exists()


def test_a_delivery_lost_on_the_way_is_queued_again_by_beat(cast, announcements_queued, clock):
    reviewer_error(cast)
    announcements.announce_inbox_items()
    assert announcements.announce_inbox_items() == []  # just queued: on its way

    clock.move_to(T0 + timedelta(minutes=3))
    again = announcements.announce_inbox_items()

    assert sorted(again) == sorted(AnnouncementDelivery.objects.values_list("pk", flat=True))


def test_announcing_runs_every_minute_by_beat():
    assert settings.CELERY_BEAT_SCHEDULE["announce-inbox-items"] == {
        "task": "rollbacks.tasks.announce_inbox_items",
        "schedule": 60.0,
    }


def test_a_new_verifier_is_told_of_new_items_only(cast, mailoutbox):
    reviewer_error(cast)
    announce_and_send()
    newcomer, _ = User.objects.get_or_create(username="nina", defaults={"email": "nina@example.com"})
    newcomer.groups.set([Group.objects.get(name="verifier")])
    mailoutbox.clear()

    announce_and_send()
    assert mailoutbox == []

    reviewer_error(cast)
    announce_and_send()
    assert "nina@example.com" in {message.to[0] for message in mailoutbox}


def test_under_a_policy_without_reminders_nothing_is_reminded(cast, mailoutbox, clock):
    load_policy(re.sub(r"(?m)^remind_after = .*\n", "", TEST_MANIFEST), actor="test-setup")
    reviewer_error(cast)
    announce_and_send()
    mailoutbox.clear()

    clock.move_to(T0 + timedelta(days=2))
    announce_and_send()

    assert mailoutbox == []


def test_a_run_with_nothing_new_costs_the_same_queries_however_many_items_wait(cast):
    def queries_of_a_quiet_run() -> int:
        announcements.announce_inbox_items()  # announces what is new
        with CaptureQueriesContext(connection) as run:
            assert announcements.announce_inbox_items() == []
        return len(run.captured_queries)

    reviewer_error(cast)
    few = queries_of_a_quiet_run()
    for _ in range(5):
        reviewer_error(cast)
    assert queries_of_a_quiet_run() == few <= 20


def test_a_request_filed_inside_the_warning_period_says_so_at_once_and_is_not_warned_again(cast, mailoutbox, clock):
    action = record(cast.shop, executed_at=T0 - timedelta(days=30) + timedelta(hours=10))  # closes in 10 hours
    rollback = services.request_rollback(
        requester=cast.shop, trigger="customer_request", reason="the customer asked", actions=[action.pk]
    )
    announce_and_send()
    clock.move_to(T0 + timedelta(hours=1))
    announce_and_send()

    assert mailed(mailoutbox) == [
        (
            "carl@example.com",
            f"Rollback #{rollback.pk} (customer request) waits for your sign-off; "
            "its reversal window closes 2026-12-01 19:00 UTC",
        )
    ]


def test_a_reminder_counts_from_when_the_item_was_announced(cast, mailoutbox, clock):
    rollback = reviewer_error(cast)
    clock.move_to(T0 + timedelta(hours=5))  # beat was down: the request is found five hours late
    announce_and_send()
    assert [subject for _, subject in mailed(mailoutbox)] == [
        f"Rollback #{rollback.pk} (reviewer error) waits for your sign-off"
    ] * 2

    clock.move_to(T0 + timedelta(hours=9, minutes=1))
    announce_and_send()
    assert len(mailoutbox) == 4
