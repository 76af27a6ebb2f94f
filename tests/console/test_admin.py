"""The admin for operators: policy manifests loaded with every error by key path, versions made current,
integrator tokens issued once and revoked, rollbacks read-only with their steps, sign-offs and communications."""

from html import unescape

import pytest
from django.contrib.auth.models import User
from knox.models import AuthToken

from audit.models import AuditEvent
from policies.models import PolicyVersion
from policies.selectors import current_policy
from tests.conftest import DEMO_MANIFEST


@pytest.fixture
def operator(db, browser_for):
    user = User.objects.create_superuser("ops", "ops@example.com", "x")
    return browser_for(user)


def post(client, url, data, **extra):
    client.get(url)
    return client.post(url, {**data, "csrfmiddlewaretoken": client.cookies["csrftoken"].value}, **extra)


@pytest.mark.django_db
def test_a_wrong_manifest_is_refused_with_every_error_by_key_path(cast, operator):
    before = (PolicyVersion.objects.count(), current_policy()[0])
    text = DEMO_MANIFEST.read_text().replace('window = "30d"', 'window = "a month"', 1)
    text = text.replace('method = "python"', 'method = "carrier-pigeon"', 1)
    response = post(operator, "/admin/policies/policyversion/add/", {"text": text})
    assert response.status_code == 400
    html = unescape(response.content.decode())
    assert '<code>action_types."refund.issue".window</code>' in html
    assert "reversal.method" in html
    assert (PolicyVersion.objects.count(), current_policy()[0]) == before


@pytest.mark.django_db
def test_a_new_manifest_is_loaded_and_an_old_version_made_current_again(cast, operator):
    demo_id = current_policy()[0]
    text = DEMO_MANIFEST.read_text().replace('version = "demo-2026-11"', 'version = "demo-2026-12"')
    response = post(operator, "/admin/policies/policyversion/add/", {"text": text})
    assert response.status_code == 302
    assert PolicyVersion.objects.get(pk=current_policy()[0]).label == "demo-2026-12"
    response = post(
        operator,
        "/admin/policies/policyversion/",
        {"action": "make_current", "_selected_action": [demo_id]},
    )
    assert response.status_code == 302 and current_policy()[0] == demo_id
    assert AuditEvent.objects.filter(kind="policy.activated", actor="ops").count() == 2


@pytest.mark.django_db
def test_a_token_is_shown_once_and_its_issue_and_revocation_are_audited(cast, operator):
    response = post(operator, "/admin/knox/authtoken/add/", {"user": cast.shop.pk, "expires": "30d"})
    assert response.status_code == 200
    token = AuthToken.objects.get(user=cast.shop)
    html = response.content.decode()
    assert 'id="issued-token"' in html and token.token_key in html
    assert AuditEvent.objects.filter(kind="token.issued", actor="ops").exists()
    response = post(operator, "/admin/knox/authtoken/", {"action": "revoke", "_selected_action": [token.pk]})
    assert response.status_code == 302 and not AuthToken.objects.exists()
    assert AuditEvent.objects.filter(kind="token.revoked", actor="ops").exists()


@pytest.mark.django_db
def test_a_token_is_refused_to_a_person_and_a_bad_lifetime_is_explained(cast, operator):
    response = post(operator, "/admin/knox/authtoken/add/", {"user": cast.alice.pk, "expires": "30d"})
    assert response.status_code == 400 and not AuthToken.objects.exists()
    response = post(operator, "/admin/knox/authtoken/add/", {"user": cast.shop.pk, "expires": "soon"})
    assert response.status_code == 400 and b"is not a duration" in response.content


@pytest.mark.django_db
def test_rollbacks_are_read_only_in_the_admin_with_their_inlines(cast, operator, reviewer_error):
    response = operator.get(f"/admin/rollbacks/rollback/{reviewer_error.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Steps" in html and "Sign offs" in html and "Communications" in html
    assert 'name="_save"' not in html
    assert operator.get("/admin/rollbacks/rollback/add/").status_code == 403
    listing = operator.get("/admin/rollbacks/rollback/", {"q": "mistake", "state__exact": "pending_authorization"})
    assert str(reviewer_error.pk) in listing.content.decode()


@pytest.mark.django_db
def test_cancelling_from_the_admin_goes_through_the_service(cast, operator, reviewer_error):
    response = post(
        operator, "/admin/rollbacks/rollback/", {"action": "cancel", "_selected_action": [reviewer_error.pk]}
    )
    assert response.status_code == 302
    reviewer_error.refresh_from_db()
    assert reviewer_error.state == "pending_authorization"  # an operator is neither requester nor signer
    assert AuditEvent.objects.filter(kind="rollback.refused", actor="ops").exists()


@pytest.mark.django_db
def test_the_admin_refuses_people_who_are_not_staff(cast, browser_for):
    assert browser_for(cast.audrey).get("/admin/policies/policyversion/add/").status_code == 302


@pytest.mark.django_db
def test_a_remediation_task_is_marked_done_from_the_admin_with_a_note(cast, ivan, task, browser_for):
    ivan.is_staff = ivan.is_superuser = True
    ivan.save(update_fields=["is_staff", "is_superuser"])
    client = browser_for(ivan)
    url = "/admin/rollbacks/remediationtask/"
    asked = post(client, url, {"action": "mark_done", "_selected_action": [task.pk]})
    assert asked.status_code == 200 and b"Record what was done" in asked.content
    task.refresh_from_db()
    assert task.done_at is None  # nothing happens before the note
    post(client, url, {"action": "mark_done", "_selected_action": [task.pk], "note": "recalled by the bank"})
    task.refresh_from_db()
    assert (task.done_by, task.note) == (ivan, "recalled by the bank")
    assert AuditEvent.objects.filter(kind="remediation.done", actor="ivan").exists()


@pytest.mark.django_db
def test_an_operator_who_signs_nothing_cannot_close_remediation_from_the_admin(cast, operator, task):
    post(
        operator,
        "/admin/rollbacks/remediationtask/",
        {"action": "mark_done", "_selected_action": [task.pk], "note": "x"},
    )
    task.refresh_from_db()
    assert task.done_at is None


@pytest.mark.django_db
def test_the_admin_shows_the_first_steps_of_a_large_rollback(cast, operator, monkeypatch):
    from rollbacks import admin as rollbacks_admin
    from rollbacks.services import request_rollback

    from .conftest import record

    actions = [record(cast.shop, "record.update") for _ in range(3)]
    rollback = request_rollback(
        requester=cast.ines, trigger="incident", reason="bad batch", actions=[a.pk for a in actions]
    )
    monkeypatch.setattr(rollbacks_admin, "INLINE_ROWS", 2)
    html = operator.get(f"/admin/rollbacks/rollback/{rollback.pk}/change/").content.decode()
    shown = [a.external_id for a in actions if f"{a.external_id}</a>" in html]
    assert len(shown) == 2
