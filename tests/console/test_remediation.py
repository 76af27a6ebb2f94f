"""Manual remediation: the list, and marking a task done with a note through complete_remediation."""

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from rollbacks.models import RemediationTask
from rollbacks.services import request_rollback, sign_off

from .conftest import csrf_token, incident_commander, record, run_to_rest, snapshot


@pytest.fixture
def ivan(cast):
    return incident_commander("ivan")


@pytest.fixture
def task(cast, ivan, eager_workers, django_capture_on_commit_callbacks) -> RemediationTask:
    """ines files an incident over a wire transfer, ivan signs it; the transfer waits for a person."""
    wire = record(cast.shop, "wire.transfer", amount="900.00")
    rollback = request_rollback(requester=cast.ines, trigger="incident", reason="wrong payee", actions=[wire.pk])
    with django_capture_on_commit_callbacks(execute=True):
        sign_off(rollback.pk, signer=ivan, decision="approve")
    run_to_rest(rollback.pk, django_capture_on_commit_callbacks)
    return RemediationTask.objects.get()


@pytest.mark.django_db
def test_open_tasks_are_listed_with_their_instructions(cast, browser_for, ivan, task):
    html = browser_for(ivan).get(reverse("console:remediation")).content.decode()
    assert f'data-task="{task.pk}"' in html and "SWIFT MT192" in html and "Mark done" in html
    for reader in (cast.audrey, cast.ines):  # an auditor reads; the requester does not close their own
        assert "Mark done" not in browser_for(reader).get(reverse("console:remediation")).content.decode()


@pytest.mark.django_db
def test_marking_a_task_done_records_the_note_and_is_audited(cast, browser_for, ivan, task):
    client = browser_for(ivan)
    token = csrf_token(client, reverse("console:remediation"))
    response = client.post(
        reverse("console:remediation-done", args=[task.pk]), {"note": "bank recalled it", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    task.refresh_from_db()
    assert (task.done_by, task.note) == (ivan, "bank recalled it") and task.done_at is not None
    assert AuditEvent.objects.filter(kind="remediation.done", actor="ivan").exists()
    html = client.get(reverse("console:remediation"), {"show": "done"}).content.decode()
    assert "bank recalled it" in html


@pytest.mark.django_db
def test_an_auditor_cannot_mark_a_task_done(cast, browser_for, task):
    client = browser_for(cast.audrey)
    token = csrf_token(client, reverse("console:remediation"))
    client.post(reverse("console:remediation-done", args=[task.pk]), {"note": "x", "csrfmiddlewaretoken": token})
    task.refresh_from_db()
    assert task.done_at is None


@pytest.mark.django_db
def test_marking_done_without_the_csrf_token_is_refused(cast, browser_for, ivan, task):
    before = snapshot()
    response = browser_for(ivan).post(reverse("console:remediation-done", args=[task.pk]), {"note": "x"})
    assert response.status_code == 403
    assert snapshot() == before


@pytest.mark.django_db
def test_opening_the_list_changes_nothing(cast, browser_for, task):
    before = snapshot()
    browser_for(cast.ines).get(reverse("console:remediation"))
    assert snapshot() == before
