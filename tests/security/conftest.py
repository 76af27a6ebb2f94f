"""Objects that most of the cast may not see: an incident over a wire transfer that shop recorded, filed by ines,
signed by a second incident commander and run until the transfer waits for a person (a step, a remediation task).
carl (customer service) may not see the incident, other_shop may not see shop's action, nobody sees nothing."""

from dataclasses import dataclass

import pytest

from actions.models import Action
from rollbacks.models import RemediationTask, Rollback, Step
from rollbacks.services import request_rollback, sign_off
from tests.console.conftest import eager_workers, incident_commander, record, run_to_rest, shop_answers_ok

__all__ = ["eager_workers", "shop_answers_ok"]  # fixtures the incident needs, shared with the console tests

MARKER = "hidden-incident"  # in the rollback's reason: no answer to an outsider may contain it


@dataclass(frozen=True)
class Incident:
    action: Action
    rollback: Rollback
    step: Step
    task: RemediationTask


@pytest.fixture
def incident(cast, eager_workers, django_capture_on_commit_callbacks) -> Incident:  # type: ignore[no-untyped-def]
    wire = record(cast.shop, "wire.transfer", amount="900.00")
    rollback = request_rollback(requester=cast.ines, trigger="incident", reason=MARKER, actions=[wire.pk])
    with django_capture_on_commit_callbacks(execute=True):
        sign_off(rollback.pk, signer=incident_commander("ivan"), decision="approve")
    run_to_rest(rollback.pk, django_capture_on_commit_callbacks)
    task = RemediationTask.objects.get(step__rollback=rollback)
    return Incident(action=wire, rollback=rollback, step=task.step, task=task)
