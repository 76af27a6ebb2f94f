"""Who holds which role, and who may act on a rollback beyond requesting and signing it."""

from typing import Any

from policies.roles import user_roles
from rollbacks.models import Rollback, Step, Trigger


def signing_roles(rollback: Rollback) -> frozenset[str]:
    """The roles whose holders sign this rollback: the trigger's, plus an expired window's extras."""
    return frozenset(requirement["role"] for requirement in rollback.required_signoffs)


def holds_signing_role(user: Any, rollback: Rollback) -> bool:
    """May confirm a cascade, cancel, retry or resolve: a holder of one of the rollback's sign-off roles who did
    not request it (the requester may still cancel their own; see rollbacks.services.cancel_rollback). For
    `reviewer_error`, the approver it undoes may not carry it on either: see approved_its_error."""
    return user.pk != rollback.requested_by_id and bool(user_roles(user) & signing_roles(rollback))


def approved_its_error(user: Any, rollback: Rollback) -> bool:
    """For `reviewer_error`: this person approved one of the actions the rollback reverses, so their approval is
    the error it undoes, and they may neither verify it nor carry it on (confirm, retry, resolve)."""
    return (
        rollback.trigger == Trigger.REVIEWER_ERROR
        and Step.objects.filter(rollback=rollback, depth=0, is_loop=False, action__approved_by=user).exists()
    )
