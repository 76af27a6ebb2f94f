"""How long to wait before trying a reversal phase or a communication again."""

from typing import Any

from django.conf import settings

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
