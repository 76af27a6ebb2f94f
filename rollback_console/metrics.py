"""`GET /metrics`: Prometheus text (the contract's "Operations"), for a scraper holding `METRICS_TOKEN`.

Every figure is read when Prometheus scrapes, from the database and the broker, so web processes and workers need
not share memory (no multiprocess directory, nothing lost when a worker restarts). The number of queries of a
scrape is constant (tests/test_operations.py).

Adding a figure is one line in `COLLECTORS`: a function returning prometheus_client metric families, e.g. the
latency engineer's calls in flight, latency and circuit state per integrator.
"""

import hmac
from collections.abc import Callable, Iterable

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu.exceptions import ChannelError, OperationalError
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rollback_console import queues
from rollback_console.celery import app
from rollbacks import gauges
from rollbacks.circuits import CLOSED, HALF_OPEN, OPEN, calls_in_flight, circuit_states

PREFIX = "rollback_console"


def steps() -> Iterable[Metric]:
    family = GaugeMetricFamily(f"{PREFIX}_steps", "Steps by outcome.", labels=["outcome"])
    for outcome, count in sorted(gauges.steps_by_outcome().items()):
        family.add_metric([outcome], count)
    yield family


def rollbacks() -> Iterable[Metric]:
    family = GaugeMetricFamily(f"{PREFIX}_rollbacks", "Rollbacks by state.", labels=["state"])
    for state, count in sorted(gauges.rollbacks_by_state().items()):
        family.add_metric([state], count)
    yield family


def messages() -> Iterable[Metric]:
    family = GaugeMetricFamily(
        f"{PREFIX}_messages", "Communications and integrator events by status.", labels=["kind", "status"]
    )
    for (kind, status), count in sorted(gauges.messages_by_status().items()):
        family.add_metric([kind, status], count)
    yield family


def inbox() -> Iterable[Metric]:
    family = GaugeMetricFamily(f"{PREFIX}_inbox", "Work waiting for a person.", labels=["inbox"])
    for name, count in gauges.inbox_sizes().items():
        family.add_metric([name], count)
    yield family


def audit_head() -> Iterable[Metric]:
    yield GaugeMetricFamily(f"{PREFIX}_audit_head_seq", "Sequence number of the audit chain's head.",
                            value=gauges.audit_head_seq())  # fmt: skip


def queue_depth() -> Iterable[Metric]:
    """Messages waiting in each Celery queue (on Redis, the LLEN of its lists); absent when the broker is down."""
    family = GaugeMetricFamily(f"{PREFIX}_queue_depth", "Messages waiting per Celery queue.", labels=["queue"])
    up = GaugeMetricFamily(f"{PREFIX}_broker_up", "1 when the broker answered this scrape.")
    try:
        with app.connection_for_read(connect_timeout=2) as conn:
            channel = conn.default_channel
            for name in queues.queue_names(settings.CELERY_QUEUE_PREFIX):
                try:
                    depth = channel.queue_declare(queue=name, passive=True).message_count
                except ChannelError:  # never declared, or empty (Redis keeps no list for an empty queue)
                    depth = 0
                family.add_metric([name], depth)
    except (OperationalError, ConnectionError, OSError):
        up.add_metric([], 0)
        yield up
        return
    up.add_metric([], 1)
    yield up
    yield family


def integrators() -> Iterable[Metric]:
    """Each integrator's circuit (1 on the state it is in) and the calls open to it across all workers."""
    circuit = GaugeMetricFamily(
        f"{PREFIX}_integrator_circuit", "Circuit breaker state per integrator.", labels=["integrator", "state"]
    )
    for integrator, state in circuit_states().items():
        for possible in (CLOSED, HALF_OPEN, OPEN):
            circuit.add_metric([integrator, possible], 1 if state == possible else 0)
    yield circuit
    in_flight = GaugeMetricFamily(
        f"{PREFIX}_integrator_calls_in_flight", "Calls open to each integrator now.", labels=["integrator"]
    )
    for integrator, count in calls_in_flight().items():
        if count is not None:
            in_flight.add_metric([integrator], count)
    yield in_flight


# One line per figure; each function yields metric families (see the module's docstring).
COLLECTORS: list[Callable[[], Iterable[Metric]]] = [
    steps,
    rollbacks,
    messages,
    inbox,
    audit_head,
    queue_depth,
    integrators,
]


class _ScrapeTime(Collector):
    def collect(self) -> Iterable[Metric]:
        for collector in COLLECTORS:
            yield from collector()


REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(_ScrapeTime())


def _authorized(request: HttpRequest) -> bool:
    token = str(getattr(settings, "METRICS_TOKEN", "") or "")
    if not token:
        return False
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(offered.strip().encode(), token.encode())


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """404 unless the request carries `Authorization: Bearer <METRICS_TOKEN>` (and always when it is empty), so
    the endpoint does not reveal itself to whoever lacks the token."""
    if not _authorized(request):
        raise Http404
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
