"""`GET /healthz` and `GET /readyz` (the contract's "Operations").

`/healthz` answers 200 while the process serves requests, touching nothing else: a liveness probe that restarts a
process because its database is down would only add restarts to an outage. `/readyz` asks each part in
`READINESS_CHECKS` and answers 200 when all answer, 503 naming the ones that did not.

Hand-written rather than django-health-check: the contract asks for two checks and a JSON body naming the failed
part; django-health-check's Celery check sends a task and waits for its result (this project keeps no result
backend), and its views and app would be more code to configure than these few lines.

Adding a check is one line in `READINESS_CHECKS`: a name and a function that raises (or returns a reason as a
string) when its part is not ready, e.g. `("integrators", circuits_closed)`.
"""

import logging
from collections.abc import Callable
from typing import Any

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from rollback_console.celery import app
from rollbacks.circuits import circuit_states

logger = logging.getLogger(__name__)

BROKER_TIMEOUT_SECONDS = 2


def database_answers() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def broker_answers() -> None:
    with app.connection_for_read(connect_timeout=BROKER_TIMEOUT_SECONDS) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT_SECONDS)


# (name, check): a check raises, or returns a reason, when its part is not ready; None means ready.
READINESS_CHECKS: list[tuple[str, Callable[[], Any]]] = [
    ("database", database_answers),
    ("broker", broker_answers),
]


def readiness() -> dict[str, str]:
    """Each check's verdict, "ok" or "failed". Why a part failed goes to the log, not to the unauthenticated
    caller (an error names hosts and ports)."""
    verdicts: dict[str, str] = {}
    for name, check in READINESS_CHECKS:
        try:
            reason = check()
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
        if reason is not None:
            logger.warning("readiness check %s failed: %s", name, reason)
        verdicts[name] = "ok" if reason is None else "failed"
    return verdicts


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    verdicts = readiness()
    failed = sorted(name for name, verdict in verdicts.items() if verdict != "ok")
    # An integrator that is down does not make this process unready (its steps wait, pending), but it is said.
    try:
        circuits = circuit_states() if not failed else {}
    except Exception as error:  # the circuits' store is the broker's Redis: its failure is the broker's, above
        logger.warning("circuit states unreadable: %s", error)
        circuits = {}
    return JsonResponse(
        {"status": "unavailable" if failed else "ok", "failed": failed, "checks": verdicts, "integrators": circuits},
        status=503 if failed else 200,
    )
