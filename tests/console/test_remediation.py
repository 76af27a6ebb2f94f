"""Manual remediation: the list, and marking a task done with a note through complete_remediation."""

import pytest
from django.urls import reverse

from audit.models import AuditEvent

from .conftest import csrf_token, snapshot


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
