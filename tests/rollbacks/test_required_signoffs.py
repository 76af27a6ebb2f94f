"""The required sign-offs as rows: written with the rollback from the same list as its JSON, and filled in for
rollbacks filed before the table existed."""

import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from rollbacks.models import RequiredSignoff
from rollbacks.services import request_rollback
from tests.rollbacks.requesting import record

pytestmark = pytest.mark.django_db


def rows_of(rollback) -> list[dict]:
    return [
        {"role": role, "count": count}
        for role, count in RequiredSignoff.objects.filter(rollback=rollback).order_by("id").values_list("role", "count")
    ]


def test_a_request_writes_its_required_signoffs_as_rows_in_one_insert(cast):
    expired = record(cast.shop, executed_at=timezone.now() - timedelta(days=31))
    with CaptureQueriesContext(connection) as captured:
        rollback = request_rollback(requester=cast.shop, trigger="customer_request", reason="x", actions=[expired.pk])

    assert rollback.required_signoffs == [{"role": "customer_service", "count": 1}, {"role": "executive", "count": 1}]
    assert rows_of(rollback) == rollback.required_signoffs
    inserts = [q for q in captured.captured_queries if q["sql"].startswith('INSERT INTO "rollbacks_requiredsignoff"')]
    assert len(inserts) == 1


def test_the_migration_fills_the_rows_of_rollbacks_filed_before_the_table(cast):
    regulatory = request_rollback(
        requester=cast.lena, trigger="regulatory_order", reason="x", actions=[record(cast.shop).pk], reference="O-1"
    )
    customer = request_rollback(
        requester=cast.shop, trigger="customer_request", reason="x", actions=[record(cast.shop).pk]
    )
    RequiredSignoff.objects.all().delete()

    migration = importlib.import_module("rollbacks.migrations.0005_fill_required_signoffs")
    migration.fill_required_signoffs(apps, None)

    assert rows_of(regulatory) == [{"role": "legal", "count": 1}, {"role": "executive", "count": 1}]
    assert rows_of(customer) == [{"role": "customer_service", "count": 1}]
