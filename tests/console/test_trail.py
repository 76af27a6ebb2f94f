"""The console's trail blocks and remediation list show no more than the objects do: ines files an incident over a
refund; carl (customer service) sees the refund but not the incident, nor its events or remediation tasks."""

import pytest
from django.urls import reverse

from rollbacks.selectors import rollbacks_visible_to
from rollbacks.services import request_rollback

from .conftest import record

SECRET_REASON = "payee account compromised, do not tell the customer"

pytestmark = pytest.mark.django_db


@pytest.fixture
def incident(cast):  # type: ignore[no-untyped-def]
    refund = record(cast.shop)
    rollback = request_rollback(requester=cast.ines, trigger="incident", reason=SECRET_REASON, actions=[refund.pk])
    assert not rollbacks_visible_to(cast.carl).filter(pk=rollback.pk).exists()
    return rollback


def test_the_console_action_page_shows_only_the_trail_the_reader_may_see(cast, browser_for, incident):
    [action_id] = incident.plan["action_ids"]
    url = reverse("console:action", args=[action_id])

    carls = browser_for(cast.carl).get(url)
    ines = browser_for(cast.ines).get(url)

    assert carls.status_code == ines.status_code == 200
    assert SECRET_REASON not in carls.content.decode()
    assert all(event.rollback_id != incident.pk for event in carls.context["events"])
    assert any(event.rollback_id == incident.pk for event in ines.context["events"])


def test_the_console_rollback_page_of_an_unseen_rollback_is_404(cast, browser_for, incident):
    response = browser_for(cast.carl).get(reverse("console:rollback", args=[incident.pk]))
    assert response.status_code == 404


def test_the_remediation_list_shows_only_tasks_of_rollbacks_the_reader_may_see(cast, browser_for, ivan, task):
    page = reverse("console:remediation")
    assert f'data-task="{task.pk}"' in browser_for(ivan).get(page).content.decode()
    assert f'data-task="{task.pk}"' in browser_for(cast.audrey).get(page).content.decode()
    assert f'data-task="{task.pk}"' not in browser_for(cast.carl).get(page).content.decode()
