import pytest
from django.contrib.auth.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    admin = User.objects.create_superuser("root-admin", "root@example.com", "pw")
    client.force_login(admin)
    return client


def test_the_admin_lists_searches_and_shows_actions_but_cannot_change_them(admin_client, recorded):
    upstream = recorded(external_id="admin/order")
    action = recorded(external_id="admin/points", action_type="loyalty.points_grant", caused_by=["admin/order"])

    assert admin_client.get("/admin/actions/action/?q=admin/points").status_code == 200
    assert admin_client.get("/admin/actions/action/?state__exact=executed").status_code == 200
    page = admin_client.get(f"/admin/actions/action/{action.pk}/change/")
    assert page.status_code == 200 and b"admin/order" in page.content
    assert admin_client.get("/admin/actions/actionlink/").status_code == 200
    assert admin_client.get("/admin/actions/action/add/").status_code == 403
    assert admin_client.post(f"/admin/actions/action/{action.pk}/change/", {"state": "reversed"}).status_code == 403
    assert admin_client.get(f"/admin/actions/action/{upstream.pk}/delete/").status_code == 403
    action.refresh_from_db()
    assert action.state == "executed"
