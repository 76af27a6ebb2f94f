"""How long to wait before trying a reversal phase or a message again, and how one message attempt ends."""

from typing import Any

from django.conf import settings
from django.utils import timezone

from rollbacks.models import AnnouncementDelivery, Communication, CommunicationStatus, IntegratorEvent

RETRY_BASE_SECONDS = 1.0
RETRY_CAP_SECONDS = 60.0


def visibility_timeout() -> float:
    """Seconds after which Redis redelivers a message a worker took but did not acknowledge."""
    timeout: Any = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    return float(timeout)


def max_retry_delay() -> float:
    # A worker holds a delayed task unacknowledged until it is due: a countdown longer than the visibility
    # timeout would be redelivered to a second worker while the first still waits on it.
    return min(RETRY_CAP_SECONDS, visibility_timeout() / 2)


def retry_delay(attempts: int) -> float:
    """Exponential backoff after `attempts` failed tries (1, 2, 4 ... seconds), capped by max_retry_delay()."""
    # `int ** int` is typed Any (a negative exponent gives a float); this one is never negative.
    backoff: int = RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    return min(backoff, max_retry_delay())


def settle_attempt(
    message: Communication | IntegratorEvent | AnnouncementDelivery, error: str | None, transient: bool
) -> tuple[str, float | None]:
    """Record how one attempt at a message (a communication, an integrator event or an announcement's delivery,
    locked by the caller) ended:
    `sent`, `attempt` (transient, tried again after the returned delay, up to NOTIFY_MAX_ATTEMPTS) or `failed`."""
    retry_in = None
    if error is None:
        message.status = CommunicationStatus.SENT
        message.sent_at = timezone.now()
        outcome = "sent"
    elif transient and message.attempts < settings.NOTIFY_MAX_ATTEMPTS:
        retry_in = retry_delay(message.attempts)
        outcome = "attempt"
    else:
        message.status = CommunicationStatus.FAILED
        outcome = "failed"
    message.last_error = error or ""
    message.claimed_until = None
    message.save(update_fields=["status", "last_error", "sent_at", "claimed_until"])
    return outcome, retry_in
