"""Who reads remediation tasks: a signed-in user gets the tasks of the rollbacks they may see, an auditor every
one (complete_remediation decides who closes a task). Open tasks come oldest first, done ones last done first."""

import pytest
from django.contrib.auth.models import AnonymousUser

from rollbacks import execution
from rollbacks.models import RemediationTask
from rollbacks.selectors import remediation_tasks_for, rollbacks_visible_to
from tests.rollbacks.executing import authorized, chain, shop_fixture, worker_fixture  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def tasks(cast, shop, worker, django_capture_on_commit_callbacks) -> list[RemediationTask]:
    """Two wire transfers nobody can take back: one filed by the shop (carl signs), one by bob (vera signs)."""
    [first] = chain(cast.shop, "wire.transfer", prefix="w1")
    [second] = chain(cast.shop, "wire.transfer", prefix="w2")
    authorized(cast, django_capture_on_commit_callbacks, [first])
    worker()
    authorized(cast, django_capture_on_commit_callbacks, [second], trigger="reviewer_error")
    worker()
    return list(RemediationTask.objects.order_by("created_at", "id"))


def test_open_tasks_are_listed_oldest_first_only_from_rollbacks_the_reader_may_see(cast, tasks):
    customer_request = tasks[0].step.rollback
    assert not rollbacks_visible_to(cast.vera).filter(pk=customer_request.pk).exists()

    assert list(remediation_tasks_for(cast.vera)) == [tasks[1]]
    assert list(remediation_tasks_for(cast.carl)) == [tasks[0]]
    assert list(remediation_tasks_for(cast.audrey)) == tasks
    assert list(remediation_tasks_for(cast.vera, done=True)) == []


def test_done_tasks_are_listed_last_done_first_and_leave_the_open_list(cast, tasks, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        execution.complete_remediation(tasks[0].pk, actor=cast.carl, note="bank returned it")
        execution.complete_remediation(tasks[1].pk, actor=cast.vera, note="recalled")

    assert list(remediation_tasks_for(cast.audrey, done=True)) == [tasks[1], tasks[0]]
    assert list(remediation_tasks_for(cast.audrey)) == []


def test_an_anonymous_user_gets_no_task(tasks):
    assert list(remediation_tasks_for(AnonymousUser())) == []
    assert list(remediation_tasks_for(AnonymousUser(), done=True)) == []
