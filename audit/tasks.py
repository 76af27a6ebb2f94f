import logging

from celery import shared_task

from audit.access import flush_access_failures as write_access_failures
from audit.services import anchor_audit_head as write_anchor
from audit.services import deliver_anchors
from audit.verification import verify_since_checkpoint

logger = logging.getLogger(__name__)


@shared_task(name="audit.tasks.anchor_audit_head")
def anchor_audit_head() -> None:
    """Every five minutes (settings.CELERY_BEAT_SCHEDULE): write the chain head outside the database, then try
    to hand it to the anchor receiver at once."""
    write_anchor()
    deliver_anchors()


@shared_task(name="audit.tasks.deliver_audit_anchors")
def deliver_audit_anchors() -> None:
    """Every minute: post the anchors the receiver has not taken yet (a receiver outage only delays them)."""
    deliver_anchors()


@shared_task(name="audit.tasks.verify_audit_trail")
def verify_audit_trail() -> None:
    """Every ten minutes: verify what was appended since the last checkpoint and checkpoint the new head."""
    verdict = verify_since_checkpoint()
    if not verdict.ok:
        logger.error("the audit trail is broken: %s", verdict.as_dict())


@shared_task(name="audit.tasks.flush_access_failures")
def flush_access_failures() -> None:
    """Every minute (settings.CELERY_BEAT_SCHEDULE): the counted refusals of closed minutes become events, even when
    no later refusal comes along to write them."""
    write_access_failures()
