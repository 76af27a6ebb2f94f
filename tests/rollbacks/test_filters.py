"""One FilterSet (rollbacks.selectors.RollbackFilter) parses a list of rollbacks' filters for the API and for the
console's queue: the API answers a bad value with 400 naming the field, the queue ignores it."""

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from rollbacks.selectors import RollbackFilter, RollbackListFilter

pytestmark = pytest.mark.django_db


def test_the_api_names_the_bad_filter_and_the_values_it_takes(cast):
    client = APIClient()
    client.force_authenticate(cast.audrey)
    response = client.get("/api/v1/rollbacks/?state=done&trigger=incident")
    assert response.status_code == 400
    body = response.json()
    assert "state" in str(body) and "pending_authorization" in str(body) and "trigger" not in str(body)


def test_the_queue_ignores_a_filter_value_the_api_would_refuse(cast):
    client = Client()
    client.force_login(cast.vera)
    assert client.get(reverse("console:queue") + "?trigger=whim&state=done").status_code == 200


def test_the_api_and_the_queue_accept_the_same_values():
    accepted = {"state": "paused", "trigger": "incident"}
    assert RollbackFilter(accepted).is_valid() and RollbackListFilter(accepted).is_valid()
    assert not RollbackFilter({"state": "done"}).is_valid() and not RollbackListFilter({"state": "done"}).is_valid()
    assert set(RollbackFilter.base_filters) < set(RollbackListFilter.base_filters)
