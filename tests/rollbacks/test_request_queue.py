from datetime import timedelta

import pytest
from django.utils import timezone

from rollbacks.selectors import queue_for, rollbacks_visible_to
from rollbacks.services import request_rollback, sign_off
from tests.rollbacks.requesting import record

pytestmark = pytest.mark.django_db


def file(cast, *, requester=None, trigger="customer_request", executed_at=None, approved_by="alice"):
    action = record(cast.shop, executed_at=executed_at, approved_by=approved_by)
    return request_rollback(
        requester=requester or cast.shop, trigger=trigger, reason="x", actions=[action.pk], reference="R"
    )


def test_the_queue_is_newest_first(cast):
    older, newer = file(cast), file(cast)

    assert list(queue_for(cast.carl)) == [newer, older]


def test_an_expired_window_puts_the_request_in_the_executives_queue(cast):
    expired = file(cast, executed_at=timezone.now() - timedelta(days=31))
    file(cast)

    assert list(queue_for(cast.eddie)) == [expired]
    assert len(queue_for(cast.carl)) == 2


def test_the_executives_turn_stays_after_customer_service_signed(cast):
    expired = file(cast, executed_at=timezone.now() - timedelta(days=31))
    sign_off(expired.pk, signer=cast.carl, decision="approve")

    assert list(queue_for(cast.carl)) == []
    assert list(queue_for(cast.eddie)) == [expired]


def test_a_verifier_does_not_queue_the_error_in_an_approval_of_their_own(cast):
    theirs = file(cast, requester=cast.bob, trigger="reviewer_error", approved_by="vera")

    assert list(queue_for(cast.vera)) == []
    assert list(queue_for(cast.victor)) == [theirs]


def test_nobody_without_a_signing_role_has_a_queue(cast):
    file(cast)

    for user in (cast.nobody, cast.audrey, cast.shop, cast.alice):
        assert list(queue_for(user)) == []


def test_an_integrator_sees_only_the_requests_it_filed(cast):
    mine = file(cast, requester=cast.shop)
    file(cast, requester=cast.carl)

    assert list(rollbacks_visible_to(cast.shop)) == [mine]
    assert list(rollbacks_visible_to(cast.other_shop)) == []
