"""Calls to integrators at real latency: many in flight within `max_in_flight` across workers, the circuit breaker
that pauses a down integrator's steps (pending, attempts kept) and resumes them, and the manifest keys for both."""

import http.server
import json
import multiprocessing
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from audit.models import AuditEvent
from policies.manifest import ManifestError
from policies.methods.webhook import post_signed
from policies.models import PolicyVersion
from policies.services import load_policy
from rollbacks import circuits, communications, execution
from rollbacks.models import Rollback, Step
from tests.conftest import DEMO_MANIFEST
from tests.rollbacks.executing import TEST_MANIFEST, authorized, chain, shop_fixture, worker_fixture  # noqa: F401
from tests.rollbacks.requesting import record

pytestmark = pytest.mark.django_db

SHOP_TABLE = 'secret_env = "SHOP_WEBHOOK_SECRET"\n'


def with_shop_limits(text: str, limits: str, version: str) -> str:
    assert SHOP_TABLE in text
    return text.replace(SHOP_TABLE, SHOP_TABLE + limits + "\n", 1).replace('version = "', f'version = "{version}-', 1)


class CountingIntegrator:
    """An HTTP integrator that answers each call after `delay` seconds and counts the calls open at once."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.open = 0
        self.most = 0
        self.calls = 0
        lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with lock:
                    owner.open += 1
                    owner.calls += 1
                    owner.most = max(owner.most, owner.open)
                time.sleep(owner.delay)
                with lock:
                    owner.open -= 1
                body = json.dumps({"status": "ok"}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/reversals"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _calls_from_one_worker(url: str, table: dict[str, Any], count: int) -> None:
    """What one worker process does: `count` calls at once from 16 threads, each within the integrator's bound."""

    def one(index: int) -> int:
        answer, _ = circuits.call_integrator(
            "shop",
            table,
            lambda: post_signed(url, {"phase": "check", "n": index}, "secret", f"k-{index}"),
            transient=circuits.transient_status,
        )
        return answer[0]

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert set(pool.map(one, range(count))) == {200}


def test_two_workers_with_many_threads_never_keep_more_calls_open_than_max_in_flight():
    integrator = CountingIntegrator(delay=0.05)
    table = {"max_in_flight": 4, "secret_env": "X"}
    try:
        # Two processes, as two worker processes would be: the bound is shared, not per process.
        context = multiprocessing.get_context("fork")
        workers = [context.Process(target=_calls_from_one_worker, args=(integrator.url, table, 24)) for _ in range(2)]
        for worker in workers:
            worker.start()
        _calls_from_one_worker(integrator.url, table, 24)  # and this process's threads as a third
        for worker in workers:
            worker.join(60)
            assert worker.exitcode == 0
    finally:
        integrator.close()

    assert integrator.calls == 72
    assert integrator.most == 4, "the bound is reached (calls travel at once) and never passed"


def test_a_killed_callers_slot_comes_back_once_its_lease_expires(settings, monkeypatch):
    integrator = CountingIntegrator(delay=0)
    clock = [time.time()]
    monkeypatch.setattr(circuits, "_now", lambda: clock[0])
    store = circuits._store()
    table = {"max_in_flight": 1, "secret_env": "X"}
    try:
        held = store.enter("shop", circuits.Limits(max_in_flight=1), 1, circuits._lease_seconds())
        # A call whose worker dies holding its slot: Redis never hears of it again; the kernel drops a dead
        # process's flock, which is what closing the file does here.
        if isinstance(store, circuits._FileStore):
            held.slots[0].close()
        clock[0] += circuits._lease_seconds() + 1
        answer, _ = circuits.call_integrator(
            "shop", table, lambda: post_signed(integrator.url, {}, "s", "k"), transient=circuits.transient_status
        )
    finally:
        integrator.close()
    assert answer[0] == 200


def test_steps_run_at_once_reverse_each_action_once_and_record_each_answer_once(
    cast, shop, worker, django_capture_on_commit_callbacks, settings
):
    settings.INTEGRATOR_CALL_THREADS = 16
    targets = [record(cast.shop, "refund.issue", external_id=f"many-{n}") for n in range(30)]

    rollback = authorized(cast, django_capture_on_commit_callbacks, targets)
    worker()

    rollback.refresh_from_db()
    assert rollback.state == "completed"
    assert set(rollback.steps.values_list("outcome", flat=True)) == {"reversed"}
    assert len(shop.effects) == 30 and set(shop.effects.values()) == {1}
    assert Counter(phase for _, phase, _ in shop.calls) == {"check": 30, "reverse": 30, "verify": 30}
    answered = AuditEvent.objects.filter(kind="rollback.step.reverse_answered", rollback_id=rollback.pk)
    assert sorted(json.loads(event.data)["step"] for event in answered) == sorted(
        rollback.steps.values_list("pk", flat=True)
    )


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def drain_with_clock(worker: Any, capture: Any, clock: Clock, limit: int = 300) -> None:
    """The synchronous worker, except that a delayed task waits its delay on the circuits' clock."""
    sync = worker.sync
    for _ in range(limit):
        if not sync.queue:
            return
        kind, argument = sync.queue.popleft()
        with capture(execute=True):
            if kind == "rollback":
                execution.run_rollback(argument)
            elif kind == "steps":
                for delay, step_ids in execution.run_steps(argument).retries.items():
                    clock.now += delay
                    sync.queue.append(("steps", step_ids))
            else:
                delivery = communications.send_communication(argument)
                if delivery is not None and delivery.retry_in is not None:
                    clock.now += delivery.retry_in
                    sync.queue.append(("communication", argument))
                elif delivery is not None:
                    execution.run_rollback(delivery.rollback_id)
    raise AssertionError("the worker never ran out of work")


def test_a_down_integrator_trips_its_circuit_its_steps_wait_pending_and_finish_once_it_is_back(
    cast, shop, worker, django_capture_on_commit_callbacks, monkeypatch
):
    load_policy(
        with_shop_limits(TEST_MANIFEST, 'trip_after = 2\ncool_down = "30s"', "breaker"),
        actor="test-setup",
    )
    clock = Clock()
    monkeypatch.setattr(circuits, "_now", clock)
    back_at = clock.now + 200  # the integrator is down for a while: several cool-downs
    answered = shop.post_signed
    seen_states: list[str] = []
    calls_while_down = []

    def down_then_back(url: str, payload: Any, secret: str, idempotency_key: str) -> tuple[int, bytes]:
        seen_states.append(circuits.circuit_of("shop")[0])
        if clock.now < back_at:
            calls_while_down.append(idempotency_key)
            return 503, b"down for maintenance"
        return answered(url, payload, secret, idempotency_key)

    monkeypatch.setattr("policies.methods.webhook.post_signed", down_then_back)
    monkeypatch.setattr(communications, "post_signed", down_then_back)
    targets = [record(cast.shop, "refund.issue", external_id=f"down-{n}") for n in range(4)]

    rollback = authorized(cast, django_capture_on_commit_callbacks, targets)
    drain_with_clock(worker, django_capture_on_commit_callbacks, clock)

    rollback.refresh_from_db()
    assert rollback.state == "completed"
    assert set(rollback.steps.values_list("outcome", flat=True)) == {"reversed"}, "nothing failed"
    assert len(shop.effects) == 4 and set(shop.effects.values()) == {1}, "nothing doubled"
    # Calls while it was down: the two that tripped the circuit, then one probe per cool-down, not one per step.
    assert 2 <= len(calls_while_down) <= 4 + 200 // 30 + 1
    assert "half_open" in seen_states
    # Attempts were not burned: at most the tripping failure and the delivery that succeeded count.
    assert max(rollback.steps.values_list("attempts", flat=True)) <= 2
    paused = AuditEvent.objects.filter(kind="rollback.step.paused", rollback_id=rollback.pk)
    assert paused.exists()
    assert all(
        json.loads(event.data)["integrator"] == "shop" and json.loads(event.data)["circuit"] == "open"
        for event in paused
    )
    assert circuits.circuit_states()["shop"] == "closed"


def test_a_step_of_an_integrator_whose_circuit_is_open_stays_pending_and_is_delivered_again_after_the_cool_down(
    cast, shop, worker, django_capture_on_commit_callbacks, monkeypatch
):
    load_policy(with_shop_limits(TEST_MANIFEST, 'trip_after = 1\ncool_down = "45s"', "open"), actor="test-setup")
    clock = Clock()
    monkeypatch.setattr(circuits, "_now", clock)
    circuits._store().trip("shop", circuits.Limits(cool_down=45))
    target = record(cast.shop, "refund.issue", external_id="held")
    rollback = authorized(cast, django_capture_on_commit_callbacks, [target])
    assert worker.sync.queue.popleft() == ("rollback", rollback.pk)
    with django_capture_on_commit_callbacks(execute=True):
        execution.run_rollback(rollback.pk)
    queued = [argument for kind, argument in worker.sync.queue if kind == "steps"]

    batch = execution.run_steps(queued[0])

    step = Step.objects.get(rollback=rollback)
    assert (step.outcome, step.attempts, step.phase) == ("pending", 0, "")
    assert list(batch.retries) == [pytest.approx(45.0, abs=0.01)]
    assert shop.calls == []
    assert circuits.circuit_states() == {"shop": "open"}


def test_the_request_page_says_an_integrators_circuit_is_open(cast, shop, client, django_capture_on_commit_callbacks):
    target = record(cast.shop, "refund.issue", external_id="page")
    rollback = authorized(cast, django_capture_on_commit_callbacks, [target])
    Rollback.objects.filter(pk=rollback.pk).update(state="executing")
    circuits._store().trip("shop", circuits.Limits())
    client.force_login(cast.carl)

    page = client.get(f"/console/rollbacks/{rollback.pk}/").content.decode()

    assert 'data-testid="circuit-shop"' in page
    assert "The circuit of integrator shop is open" in page


def test_the_request_page_says_nothing_of_circuits_while_they_are_closed(
    cast, shop, client, django_capture_on_commit_callbacks
):
    target = record(cast.shop, "refund.issue", external_id="page")
    rollback = authorized(cast, django_capture_on_commit_callbacks, [target])
    Rollback.objects.filter(pk=rollback.pk).update(state="executing")
    client.force_login(cast.carl)

    page = client.get(f"/console/rollbacks/{rollback.pk}/").content.decode()

    assert "circuit-shop" not in page


def refused(text: str) -> list[str]:
    versions = PolicyVersion.objects.count()
    with pytest.raises(ManifestError) as error:
        load_policy(text, actor="paula")
    assert PolicyVersion.objects.count() == versions
    return error.value.errors


@pytest.mark.parametrize(
    ("limits", "error"),
    [
        ("max_in_flight = 0", "integrators.shop.max_in_flight: must be a whole number from 1 to 1024"),
        ("max_in_flight = 5000", "integrators.shop.max_in_flight: must be a whole number from 1 to 1024"),
        ('max_in_flight = "16"', "integrators.shop.max_in_flight: must be a whole number from 1 to 1024"),
        ("max_in_flight = true", "integrators.shop.max_in_flight: must be a whole number from 1 to 1024"),
        ("trip_after = -1", "integrators.shop.trip_after: must be a whole number from 1 to 10000"),
        ('cool_down = "soon"', "integrators.shop.cool_down: 'soon' is not a duration such as 60s, 15m, 12h or 30d"),
        ('cool_down = "0s"', "integrators.shop.cool_down: '0s' is not a duration of at least 1s such as 60s or 5m"),
        ('cool_down = "2d"', "integrators.shop.cool_down: '2d' is longer than the most allowed, 1 days"),
        ("cool_down = 60", "integrators.shop.cool_down: 60 is not a duration of at least 1s such as 60s or 5m"),
    ],
)
def test_bad_call_limits_of_an_integrator_are_refused_by_key_path(cast, limits, error):
    assert refused(with_shop_limits(DEMO_MANIFEST.read_text(), limits, "bad")) == [error]


def test_call_limits_of_an_integrator_are_read_with_their_defaults(cast):
    load_policy(
        with_shop_limits(DEMO_MANIFEST.read_text(), 'max_in_flight = 64\ntrip_after = 5\ncool_down = "2m"', "ok"),
        actor="paula",
    )
    from policies.selectors import current_policy

    table = current_policy()[1].integrators["shop"]
    assert circuits.limits_of(table) == circuits.Limits(max_in_flight=64, trip_after=5, cool_down=120.0)
    assert circuits.limits_of({}) == circuits.Limits(max_in_flight=16, trip_after=20, cool_down=60.0)


def test_circuit_states_name_every_integrator_of_the_current_policy(cast, policy):
    circuits._store().trip("shop", circuits.Limits(cool_down=60))

    assert circuits.circuit_states() == {"shop": "open"}
