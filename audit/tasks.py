from celery import shared_task

from audit.access import flush_access_failures as write_access_failures
from audit.services import anchor_audit_head as write_anchor


@shared_task(name="audit.tasks.anchor_audit_head")
def anchor_audit_head() -> None:
    """Every five minutes (settings.CELERY_BEAT_SCHEDULE): write the chain head outside the database."""
    write_anchor()


@shared_task(name="audit.tasks.flush_access_failures")
def flush_access_failures() -> None:
    """Every minute (settings.CELERY_BEAT_SCHEDULE): the counted refusals of closed minutes become events, even when
    no later refusal comes along to write them."""
    write_access_failures()
