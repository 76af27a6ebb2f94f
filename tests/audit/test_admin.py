import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client

from audit.models import AnchorDelivery, AuditCheckpoint, AuditEvent
from audit.services import anchor_audit_head, record_checkpoint
from tests.audit.conftest import head, record, superuser_tampering, triggers_disabled

CHANGELIST = "/admin/audit/auditevent/"


@pytest.fixture
def admin_client_(db) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root-admin", "root@example.com", "x"))
    return client


def test_the_trail_links_to_its_verification_which_reports_the_head(cast, admin_client_):
    record(2, actor="carl", kind="rollback.requested")
    listing = admin_client_.get(CHANGELIST)
    assert listing.status_code == 200 and f"{CHANGELIST}verify/" in listing.text
    response = admin_client_.get(f"{CHANGELIST}verify/")
    assert response.status_code == 200
    assert response.context["verification"] == {"ok": True, "events": AuditEvent.objects.count(), "head": head()[1]}
    assert "Chain verified" in response.text


def test_the_verification_page_is_for_staff_who_may_read_the_trail(cast):
    client = Client()
    client.force_login(cast.nobody)
    assert client.get(f"{CHANGELIST}verify/").status_code == 302  # to the admin login


def test_the_trail_is_searchable_by_actor_and_filterable_by_kind(cast, admin_client_):
    carl = record(1, actor="carl", kind="rollback.requested")[0]
    vera = record(1, actor="vera", kind="rollback.signoff")[0]
    by_actor = admin_client_.get(CHANGELIST, {"q": "vera"}).context["cl"].result_list
    by_kind = admin_client_.get(CHANGELIST, {"kind": "rollback.requested"}).context["cl"].result_list
    assert [event.seq for event in by_actor] == [vera.seq]
    assert carl.seq in [event.seq for event in by_kind] and vera.seq not in [event.seq for event in by_kind]


def test_nobody_can_add_change_or_delete_an_event_in_admin(cast, admin_client_):
    event = record(1)[0]
    model_admin = admin.site._registry[AuditEvent]
    request = admin_client_.get(CHANGELIST).wsgi_request
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, event)
    assert not model_admin.has_delete_permission(request, event)
    assert model_admin.get_actions(request) == {}
    assert admin_client_.get(f"{CHANGELIST}add/").status_code == 403
    assert admin_client_.post(f"{CHANGELIST}{event.seq}/delete/", {"post": "yes"}).status_code == 403
    assert admin_client_.post(f"{CHANGELIST}{event.seq}/change/", {"actor": "mallory"}).status_code == 403
    detail = admin_client_.get(f"{CHANGELIST}{event.seq}/change/")
    assert detail.status_code == 200 and "mallory" not in detail.text
    assert AuditEvent.objects.get(seq=event.seq).actor == "shop"


class TestABrokenChainInAdmin:
    pytestmark = superuser_tampering

    def test_the_list_says_where_the_chain_breaks(self, cast, admin_client_):
        target = record(3)[1]
        with triggers_disabled():
            AuditEvent.objects.filter(seq=target.seq).update(actor="mallory")
        response = admin_client_.get(f"{CHANGELIST}verify/")
        assert response.context["verification"]["broken_seq"] == target.seq
        assert f"Chain broken at seq {target.seq}" in response.text


def test_anchor_deliveries_and_checkpoints_are_listed_and_nobody_can_add_change_or_delete_them(
    cast, admin_client_, settings
):
    settings.AUDIT_ANCHOR_URL = "http://127.0.0.1:9/anchors"
    record(1)
    anchor_audit_head()
    checkpoint = record_checkpoint(*head(), full=True)
    assert checkpoint is not None
    delivery = AnchorDelivery.objects.first()
    for model, row, listing in (
        (AnchorDelivery, delivery, "/admin/audit/anchordelivery/"),
        (AuditCheckpoint, checkpoint, "/admin/audit/auditcheckpoint/"),
    ):
        model_admin = admin.site._registry[model]
        request = admin_client_.get(listing).wsgi_request
        assert admin_client_.get(listing).status_code == 200
        assert not model_admin.has_add_permission(request)
        assert not model_admin.has_change_permission(request, row)
        assert not model_admin.has_delete_permission(request, row)
        assert admin_client_.post(f"{listing}{row.pk}/delete/", {"post": "yes"}).status_code == 403
        assert admin_client_.post(f"{listing}{row.pk}/change/", {"seq": 1}).status_code == 403
    assert AnchorDelivery.objects.count() == 2 and AuditCheckpoint.objects.count() == 1
