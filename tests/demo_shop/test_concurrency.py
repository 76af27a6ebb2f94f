import dataclasses
import threading
import time
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client

from demo_shop.models import Customer
from demo_shop.operations import OPERATIONS
from tests.demo_shop.conftest import SignedClient

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks are what is tested"),
]


@pytest.mark.django_db(transaction=True)
def test_two_rollbacks_charging_back_the_same_refund_at_once_take_the_money_once(books, monkeypatch):
    chargeback = OPERATIONS["refund.chargeback"]

    def slow_apply(row, now):  # widen the window between reading the refund and charging it back
        time.sleep(0.5)
        chargeback.apply(row, now)

    monkeypatch.setitem(OPERATIONS, "refund.chargeback", dataclasses.replace(chargeback, apply=slow_apply))
    answers = []

    def reverse(step_id: int) -> None:
        try:
            response = SignedClient(Client()).reverse_phase(
                "reverse", "refund.chargeback", "run-1/refund", step_id=step_id
            )
            answers.append(response.json())
        finally:
            connection.close()

    threads = [threading.Thread(target=reverse, args=(step_id,)) for step_id in (70, 71)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [{"status": "ok"}, {"status": "ok"}]
    assert Customer.objects.get(number=1001).balance == Decimal("0.00")
