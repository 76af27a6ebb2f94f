"""Calls to integrators: how many may be open at once, and whether an integrator is called at all.

Every HTTP call to an integrator (a reversal phase, a customer notification, an integrator event) goes through a
session (`calls_to`; `call_integrator` for a single call). A session takes some of the integrator's
`max_in_flight` slots, counted across all workers, in one round trip, lends them to its calls while they travel,
gives them back in another, and feeds the integrator's circuit breaker: after `trip_after` consecutive transient
failures (timeouts, refused connections, 5xx) the circuit opens and nobody calls the integrator for
`cool_down`; then one call, the probe (`half_open`), decides whether it closes again or stays open for another
cool-down. A call the circuit stops raises CircuitOpen before anything is sent, so the caller can leave its step
or message pending.

The shared state lives in Redis when the broker is Redis (a slot is a lease in a sorted set that expires after
the longest a call may take and renewed while the session lasts, so a killed worker's slots come back by
themselves), and otherwise in lock files
beside the embedded broker (a slot is an flock, which the kernel drops with the process that held it). Keys carry
the database's name, so test databases, or two installations on one Redis, do not share circuits.

`run_concurrently` is the worker's pool: the calls of one phase of a batch travel at once on its threads (bounded
by INTEGRATOR_CALL_THREADS per process, and by the slots across processes).
"""

import fcntl
import hashlib
import json
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

import redis
from django.conf import settings
from django.db import connections

from policies.manifest import parse_duration
from policies.selectors import NoPolicyLoaded, current_policy, policy_of

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"

DEFAULT_MAX_IN_FLIGHT = 16
DEFAULT_TRIP_AFTER = 20
DEFAULT_COOL_DOWN = 60.0
# While another call probes a half-open circuit, the others look again after this long.
PROBE_WAIT_SECONDS = 1.0

T = TypeVar("T")


@dataclass(frozen=True)
class Limits:
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    trip_after: int = DEFAULT_TRIP_AFTER
    cool_down: float = DEFAULT_COOL_DOWN


def limits_of(table: Mapping[str, Any] | None) -> Limits:
    """An `[integrators.KEY]` table's limits (validated by the manifest loader), the defaults where it names none."""
    table = table or {}
    cool_down = table.get("cool_down")
    return Limits(
        max_in_flight=int(table.get("max_in_flight", DEFAULT_MAX_IN_FLIGHT)),
        trip_after=int(table.get("trip_after", DEFAULT_TRIP_AFTER)),
        cool_down=parse_duration(cool_down).total_seconds() if isinstance(cool_down, str) else DEFAULT_COOL_DOWN,
    )


class CircuitOpen(Exception):
    """The integrator's circuit is open (or another call is probing it): nothing was sent."""

    def __init__(self, integrator: str, retry_in: float) -> None:
        super().__init__(f"the circuit of integrator {integrator!r} is open; calls resume in {retry_in:.0f} s")
        self.integrator = integrator
        self.retry_in = retry_in


@dataclass(frozen=True)
class Answer:
    """What a call learned besides its own result: the circuit's state once the result was counted."""

    circuit: str


@dataclass
class _Tally:
    """The results of one session's calls, in the order they came: what the breaker records when it ends."""

    succeeded: bool = False
    trailing_failures: int = 0  # failures since the last success (all of them when none succeeded)
    opened: bool = False


class Calls:
    """Calls to one integrator on a few slots taken together (one round trip to the shared store to take them,
    one to give them back), used by many threads: each call waits for one of the session's slots. The breaker
    counts results as they come, so the session stops calling the moment its failures trip the circuit."""

    def __init__(self, store: "_Store", integrator: str, limits: Limits, grant: "_Grant") -> None:
        self.store, self.integrator, self.limits, self.grant = store, integrator, limits, grant
        self.tally = _Tally()
        self.failures = grant.failures  # consecutive failures, the store's count when the session began
        self.slots = threading.Semaphore(len(grant.slots))
        self.lock = threading.Lock()
        self.renewed_at = time.monotonic()

    def call(self, send: Callable[[], T], *, transient: Callable[[T], bool]) -> tuple[T, Answer]:
        with self.slots:
            if self.tally.opened:
                raise CircuitOpen(self.integrator, self.limits.cool_down)
            result = send()
            failed = transient(result)
            with self.lock:
                trip = self.count(failed)
                if time.monotonic() - self.renewed_at > _lease_seconds() / 3:
                    self.store.renew(self.integrator, self.grant, _lease_seconds())
                    self.renewed_at = time.monotonic()
            if trip:
                self.store.trip(self.integrator, self.limits)
        return result, Answer(OPEN if self.tally.opened else CLOSED)

    def count(self, failed: bool) -> bool:
        """Count one result; True when it is the one that opens the circuit."""
        if not failed:
            self.tally.succeeded, self.tally.trailing_failures, self.failures = True, 0, 0
            return False
        self.tally.trailing_failures += 1
        self.failures += 1
        if not self.tally.opened and (self.failures >= self.limits.trip_after or self.grant.probe):
            self.tally.opened = True
            return True
        return False


@contextmanager
def calls_to(integrator: str, table: Mapping[str, Any] | None, wanted: int) -> Iterator[Calls]:
    """A session of up to `wanted` calls at once to `integrator` (fewer when others hold its slots; one, the
    probe, when its circuit is half open). Raises CircuitOpen, nothing sent, while the circuit is open."""
    limits = limits_of(table)
    store = _store()
    grant = store.enter(integrator, limits, max(wanted, 1), _lease_seconds())
    session = Calls(store, integrator, limits, grant)
    try:
        yield session
    finally:
        counted = session.tally.succeeded or session.tally.trailing_failures
        store.leave(integrator, grant, session.tally if counted else None, limits)


def call_integrator(
    integrator: str, table: Mapping[str, Any] | None, send: Callable[[], T], *, transient: Callable[[T], bool]
) -> tuple[T, Answer]:
    """Send one call to `integrator` within its bounds. Raises CircuitOpen (nothing sent) while its circuit is
    open. `transient(result)` says whether the result was a timeout, refused connection or 5xx."""
    with calls_to(integrator, table, 1) as calls:
        result, answer = calls.call(send, transient=transient)
    if answer.circuit != OPEN:
        # Another worker's failures may have opened it meanwhile: say what the store says now.
        answer = Answer(circuit_of(integrator)[0] if transient(result) else CLOSED)
    return result, answer


def transient_status(answer: tuple[int, bytes]) -> bool:
    """Whether a `post_signed` answer is one the breaker counts: no answer (refused, timed out) or a 5xx."""
    return answer[0] == 0 or answer[0] >= 500


def circuit_of(integrator: str) -> tuple[str, float]:
    """(state, seconds until a probe may be sent) of one integrator's circuit."""
    return _store().circuit(integrator)


def circuit_states() -> dict[str, str]:
    """Every integrator of the current policy with its circuit's state, e.g. {"shop": "closed"}: what the
    console, `/readyz` and the metrics report."""
    try:
        _, manifest = current_policy()
    except NoPolicyLoaded:
        return {}
    store = _store()
    return {key: store.circuit(key)[0] for key in sorted(manifest.integrators)}


def calls_in_flight() -> dict[str, int | None]:
    """Every integrator of the current policy with the calls open to it now across all workers (the unexpired
    leases in Redis); None where slots are file locks, which cannot be counted without taking them."""
    try:
        _, manifest = current_policy()
    except NoPolicyLoaded:
        return {}
    store = _store()
    return {key: store.in_flight(key) for key in sorted(manifest.integrators)}


def circuits_holding(policy_version_id: int, pending_action_types: Iterable[str]) -> dict[str, str]:
    """The integrators whose circuit is not closed among those that reverse these action types (a rollback's
    pending steps, under its policy version), for the line on the request page."""
    manifest = policy_of(policy_version_id)
    keys = set()
    for name in set(pending_action_types):
        policy = manifest.action_type(name)
        if policy is not None and policy.method == "webhook":
            keys.add(str(policy.reversal.get("integrator", "")))
    if not keys:
        return {}
    store = _store()
    states = {key: store.circuit(key)[0] for key in sorted(keys)}
    return {key: state for key, state in states.items() if state != CLOSED}


def reset_circuits() -> None:
    """Forget every circuit's failures and every slot (tests start from here)."""
    _store().reset()


def run_concurrently(
    calls: Sequence[Callable[[], T]], *, inline: bool = False
) -> Iterator[list[tuple[int, T | BaseException]]]:
    """Run the calls on the worker's pool, yielding (index, result or exception) in waves as they complete, so
    the caller can record what answered while the rest still travel. Calls that need no integrator (`inline`),
    one call, or a pool of one thread run here in order and come back as one wave; an exception raised by a call
    propagates at once, as it would have before."""
    threads = settings.INTEGRATOR_CALL_THREADS
    if inline or threads <= 1 or len(calls) <= 1:
        yield [(index, call()) for index, call in enumerate(calls)]
        return
    pool = _pool(threads)
    futures: dict[Future[T], int] = {pool.submit(call): index for index, call in enumerate(calls)}
    pending = set(futures)
    while pending:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        wave: list[tuple[int, T | BaseException]] = []
        for future in sorted(done, key=futures.__getitem__):
            exception = future.exception()
            wave.append((futures[future], exception if exception is not None else future.result()))
        yield wave


# -- the worker's thread pool


_pool_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def _pool(threads: int) -> ThreadPoolExecutor:
    global _executor
    with _pool_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="integrator-call")
        return _executor


def _forget_after_fork() -> None:
    # A prefork child inherits the parent's pool object but none of its threads, and a lock maybe held.
    global _executor, _pool_lock, _shared
    _executor = None
    _pool_lock = threading.Lock()
    _shared = None


os.register_at_fork(after_in_child=_forget_after_fork)


def _now() -> float:
    # The circuits' one clock (tests move it); Redis is given it too, so its leases agree with the files'.
    return time.time()


def _lease_seconds() -> float:
    # Longer than any call may take (its timeout), so a live call never loses its slot.
    return float(settings.WEBHOOK_TIMEOUT_SECONDS) + 30.0


def _namespace() -> str:
    name = str(connections["default"].settings_dict.get("NAME") or "default")
    return hashlib.sha256(name.encode()).hexdigest()[:12]


# -- where the slots and circuits are kept


@dataclass
class _Grant:
    """The slots a session holds, whether it is its circuit's probe, and the failures counted when it began."""

    slots: list[Any]
    probe: Any = None
    failures: int = 0


class _Store(Protocol):
    namespace: str

    def enter(self, integrator: str, limits: Limits, wanted: int, lease: float) -> _Grant:
        """Wait for at least one slot (at most `wanted`); raise CircuitOpen instead while the circuit is open or
        another call probes it."""
        ...

    def renew(self, integrator: str, grant: _Grant, lease: float) -> None: ...

    def trip(self, integrator: str, limits: Limits) -> None:
        """Open the circuit now (a session's failures reached trip_after, or its probe failed)."""
        ...

    def leave(self, integrator: str, grant: _Grant, tally: _Tally | None, limits: Limits) -> str:
        """Give the slots back and record the results (None: none came); the state after."""
        ...

    def circuit(self, integrator: str) -> tuple[str, float]: ...
    def in_flight(self, integrator: str) -> int | None: ...
    def reset(self) -> None: ...


_shared: _Store | None = None


def _store() -> _Store:
    global _shared
    if _is_redis():
        if _shared is None or _shared.namespace != _namespace():
            _shared = _RedisStore(settings.CELERY_BROKER_URL, _namespace())
    else:
        folder = Path(settings.CIRCUITS_DIR) / _namespace()
        if _shared is None or _shared.namespace != str(folder):
            _shared = _FileStore(folder, str(folder))
    return _shared


def _is_redis() -> bool:
    return str(settings.CELERY_BROKER_URL).startswith(("redis://", "rediss://"))


def _state(open_until: float, now: float) -> tuple[str, float]:
    if not open_until:
        return CLOSED, 0.0
    if now < open_until:
        return OPEN, open_until - now
    return HALF_OPEN, 0.0


def _backoff(tries: int) -> float:
    wait: float = min(0.002 * 2**tries, 0.05)
    return wait * (0.5 + random.random())


# One round trip to enter: refuse while open, take the probe (and one slot) when half open, else take up to
# ARGV[5] slots while fewer than ARGV[1] unexpired leases are held (a lease is a token scored by its expiry).
# Numbers go back as strings: Redis would truncate a Lua number to an integer.
_ENTER = """
local now = tonumber(ARGV[3])
local open_until = tonumber(redis.call('HGET', KEYS[2], 'open_until') or '0')
local failures = redis.call('HGET', KEYS[2], 'failures') or '0'
local probe = '0'
local wanted = tonumber(ARGV[5])
if open_until > 0 then
  if now < open_until then return {'open', tostring(open_until - now)} end
  if not redis.call('SET', KEYS[3], ARGV[4], 'NX', 'PX', ARGV[6]) then return {'probing', '0'} end
  probe = '1'
  wanted = 1
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local free = tonumber(ARGV[1]) - redis.call('ZCARD', KEYS[1])
if free <= 0 then
  if probe == '1' then redis.call('DEL', KEYS[3]) end
  return {'busy', '0'}
end
local taken = math.min(free, wanted)
for i = 1, taken do redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4] .. ':' .. i) end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return {'slots', tostring(taken), probe, failures}
"""
# One round trip to leave: give the slots back, then record the results. ARGV[3]: '' none came, 'ok' one at
# least succeeded (the count starts again from the failures after it), 'failed' none succeeded. The trip_after-th
# consecutive failure, or a failure while it is open or half open, opens the circuit for the cool-down.
_LEAVE = """
for i = 1, tonumber(ARGV[2]) do redis.call('ZREM', KEYS[1], ARGV[1] .. ':' .. i) end
if ARGV[3] == '' then
  if ARGV[8] == '1' then redis.call('DEL', KEYS[3]) end
  return 'unknown'
end
local open_until = tonumber(redis.call('HGET', KEYS[2], 'open_until') or '0')
local failures
if ARGV[3] == 'ok' then
  if ARGV[4] == '0' then
    redis.call('DEL', KEYS[2], KEYS[3])
    return 'closed'
  end
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], 'failures', ARGV[4])
  failures = tonumber(ARGV[4])
  open_until = 0
else
  failures = redis.call('HINCRBY', KEYS[2], 'failures', tonumber(ARGV[4]))
end
if failures >= tonumber(ARGV[5]) or open_until > 0 then
  redis.call('HSET', KEYS[2], 'open_until', tostring(tonumber(ARGV[7]) + tonumber(ARGV[6])))
  redis.call('DEL', KEYS[3])
  return 'open'
end
if ARGV[8] == '1' then redis.call('DEL', KEYS[3]) end
return 'closed'
"""


class _RedisStore:
    def __init__(self, url: str, namespace: str) -> None:
        self.namespace = namespace
        self.client = redis.Redis.from_url(url, socket_timeout=5, health_check_interval=30)
        self.enter_script = self.client.register_script(_ENTER)
        self.leave_script = self.client.register_script(_LEAVE)

    def keys(self, integrator: str) -> list[str]:
        return [f"rc:{self.namespace}:{kind}:{integrator}" for kind in ("in_flight", "circuit", "probe")]

    def enter(self, integrator: str, limits: Limits, wanted: int, lease: float) -> _Grant:
        token, tries = uuid.uuid4().hex, 0
        while True:
            now = _now()
            args: list[str | int] = [
                limits.max_in_flight,
                repr(now + lease),
                repr(now),
                token,
                wanted,
                int(lease * 1000),
            ]
            answer, *details = (part.decode() for part in self.enter_script(keys=self.keys(integrator), args=args))
            if answer == "slots":
                taken, probe, failures = details
                return _Grant([f"{token}:{i}" for i in range(1, int(taken) + 1)], probe == "1", int(failures))
            if answer == "open":
                raise CircuitOpen(integrator, float(details[0]))
            if answer == "probing":
                raise CircuitOpen(integrator, PROBE_WAIT_SECONDS)
            time.sleep(_backoff(tries))
            tries += 1

    def renew(self, integrator: str, grant: _Grant, lease: float) -> None:
        expiry = _now() + lease
        self.client.zadd(self.keys(integrator)[0], dict.fromkeys(grant.slots, expiry), xx=True)

    def trip(self, integrator: str, limits: Limits) -> None:
        self.client.hset(self.keys(integrator)[1], "open_until", repr(_now() + limits.cool_down))

    def leave(self, integrator: str, grant: _Grant, tally: _Tally | None, limits: Limits) -> str:
        token = grant.slots[0].rpartition(":")[0] if grant.slots else ""
        result = "" if tally is None else ("ok" if tally.succeeded else "failed")
        trailing = tally.trailing_failures if tally is not None else 0
        args: list[str | int] = [
            token,
            len(grant.slots),
            result,
            trailing,
            limits.trip_after,
            repr(limits.cool_down),
            repr(_now()),
            "1" if grant.probe else "0",
        ]
        state = self.leave_script(keys=self.keys(integrator), args=args)
        return state.decode() if isinstance(state, bytes) else str(state)

    def circuit(self, integrator: str) -> tuple[str, float]:
        open_until = self.client.hget(self.keys(integrator)[1], "open_until")
        return _state(float(open_until or 0), _now())

    def in_flight(self, integrator: str) -> int | None:
        return int(self.client.zcount(self.keys(integrator)[0], f"({_now()!r}", "+inf"))

    def reset(self) -> None:
        names = list(self.client.scan_iter(match=f"rc:{self.namespace}:*", count=500))
        if names:
            self.client.delete(*names)


class _FileStore:
    """One machine without Redis: slots are flocks on files `KEY.slot.N`, a circuit a small JSON file changed
    under an flock of its own, a probe an flock held for the probe's call."""

    def __init__(self, folder: Path, namespace: str) -> None:
        self.namespace = namespace
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def path(self, integrator: str, suffix: str) -> Path:
        safe = hashlib.sha256(integrator.encode()).hexdigest()[:16]
        return self.folder / f"{safe}.{suffix}"

    def _try_lock(self, path: Path) -> IO[bytes] | None:
        handle = open(path, "ab")  # noqa: SIM115 (held open for as long as the lock is)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        return handle

    def enter(self, integrator: str, limits: Limits, wanted: int, lease: float) -> _Grant:
        state, retry_in = self.circuit(integrator)
        probe = None
        if state == OPEN:
            raise CircuitOpen(integrator, retry_in)
        if state == HALF_OPEN:
            probe = self._try_lock(self.path(integrator, "probe"))
            if probe is None:
                raise CircuitOpen(integrator, PROBE_WAIT_SECONDS)
            wanted = 1
        tries = 0
        while True:
            slots: list[Any] = []
            for index in random.sample(range(limits.max_in_flight), limits.max_in_flight):
                handle = self._try_lock(self.path(integrator, f"slot.{index}"))
                if handle is not None:
                    slots.append(handle)
                    if len(slots) == wanted:
                        break
            if slots:
                failures = int(self._read(integrator).get("failures", 0))
                return _Grant(slots, probe, failures)
            time.sleep(_backoff(tries))
            tries += 1

    def renew(self, integrator: str, grant: _Grant, lease: float) -> None:
        pass  # an flock lasts as long as its process: nothing expires

    def trip(self, integrator: str, limits: Limits) -> None:
        with self._circuit_file(integrator) as data:
            data["open_until"] = _now() + limits.cool_down

    def leave(self, integrator: str, grant: _Grant, tally: _Tally | None, limits: Limits) -> str:
        for slot in grant.slots:
            slot.close()  # closing drops the flock
        try:
            if tally is None:
                return "unknown"
            with self._circuit_file(integrator) as data:
                if tally.succeeded:
                    data.clear()
                    if not tally.trailing_failures:
                        return CLOSED
                data["failures"] = data.get("failures", 0) + tally.trailing_failures
                if data["failures"] >= limits.trip_after or data.get("open_until", 0):
                    data["open_until"] = _now() + limits.cool_down
                    return OPEN
                return CLOSED
        finally:
            if grant.probe is not None:
                grant.probe.close()

    def _read(self, integrator: str) -> dict[str, float]:
        try:
            data: dict[str, float] = json.loads(self.path(integrator, "circuit").read_text())
        except (FileNotFoundError, ValueError):
            data = {}
        return data

    @contextmanager
    def _circuit_file(self, integrator: str) -> Iterator[dict[str, float]]:
        with open(self.path(integrator, "lock"), "ab") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            path = self.path(integrator, "circuit")
            try:
                data: dict[str, float] = json.loads(path.read_text())
            except (FileNotFoundError, ValueError):
                data = {}
            before = dict(data)
            yield data
            if data != before:
                temporary = path.with_suffix(f".tmp{os.getpid()}.{threading.get_ident()}")
                temporary.write_text(json.dumps(data))
                temporary.replace(path)

    def circuit(self, integrator: str) -> tuple[str, float]:
        return _state(float(self._read(integrator).get("open_until", 0)), _now())

    def in_flight(self, integrator: str) -> int | None:
        return None  # a slot is an flock: counting them would mean taking them

    def reset(self) -> None:
        for path in self.folder.glob("*"):
            path.unlink(missing_ok=True)
