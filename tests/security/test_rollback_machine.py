"""Random sequences of requests, sign-offs, rejections, cancels, cascade confirmations, retries, resolves, integrator
answers and worker runs, through the real services, with the invariants checked after every step:

- a rollback's state and a step's outcome only move along the tables beside their choices (read back from the
  audit trail, which every move writes, and compared with the rows);
- nothing is reversed for a rollback that never reached `authorized`, nor deeper than confirmed, nor twice;
- one person counts once on a rollback, and nobody signs what they requested.
"""

import re
from types import SimpleNamespace
from typing import Any

import orjson
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from audit.models import AuditEvent
from rollback_console.errors import DomainError
from rollbacks import services
from rollbacks.execution import confirm_cascade, resolve_step, retry_step
from rollbacks.models import (
    ROLLBACK_TRANSITIONS,
    STEP_TRANSITIONS,
    Rollback,
    RollbackState,
    SignOff,
    Step,
    StepOutcome,
    Trigger,
)
from tests.rollbacks.executing import chain, shop_fixture, worker_fixture
from tests.rollbacks.requesting import colleague

__all__ = ["shop_fixture", "worker_fixture"]  # the fake integrator and the synchronous worker, as fixtures

PEOPLE = ("alice", "bob", "vera", "carl", "ines", "ivan", "paula", "lena", "eddie", "lex", "shop", "nobody")
# Who files which trigger under the demo policy: drawn most of the time, so histories get past the request.
FILERS = (
    ("shop", Trigger.CUSTOMER_REQUEST),
    ("carl", Trigger.CUSTOMER_REQUEST),
    ("bob", Trigger.REVIEWER_ERROR),
    ("alice", Trigger.REVIEWER_ERROR),
    ("ines", Trigger.INCIDENT),
    ("paula", Trigger.POLICY_REVERSAL),
    ("lena", Trigger.REGULATORY_ORDER),
    ("lex", Trigger.REGULATORY_ORDER),
)
OPERATIONS = ("benefits.restore", "membership.suspend", "record.restore")  # the python handlers of the test policy
# Who signs which trigger: a rule picks among these (by index) or anyone at all, so sign-offs, confirmations,
# retries and resolves land often enough, and are refused often enough, to matter.
SIGNERS = {
    Trigger.CUSTOMER_REQUEST: ("carl",),
    Trigger.REVIEWER_ERROR: ("vera",),
    Trigger.INCIDENT: ("ivan", "ines"),
    Trigger.POLICY_REVERSAL: ("paula", "lena", "lex"),
    Trigger.REGULATORY_ORDER: ("lena", "eddie", "lex"),
}
SOMEONE = st.one_of(st.integers(0, 2), st.sampled_from(PEOPLE))  # a signer of the trigger, by index, or anyone
PICKS = st.lists(st.integers(0, 2), min_size=1, max_size=2, unique=True)  # indexes into the machine's actions
DEPTH = st.one_of(st.none(), st.integers(0, 1))
ANSWERS = (
    (200, {"status": "ok"}),
    (200, {"status": "unmet", "unmet": ["account_open"]}),
    (200, {"status": "manual", "detail": "call the customer"}),
    (400, {"status": "failed", "detail": "no such record"}),
    (503, {}),
)
PHASES = ("check", "reverse")
REVERSE_KEY = re.compile(r"step-(\d+)-reverse")


def _moves(rollback_id: int) -> tuple[list[tuple[str, str]], dict[int, list[tuple[str, str]]]]:
    """The rollback's state moves and each step's outcome moves, in order, as the trail recorded them."""
    states: list[tuple[str, str]] = []
    steps: dict[int, list[tuple[str, str]]] = {}
    for event in AuditEvent.objects.filter(rollback_id=rollback_id).order_by("seq"):
        data = orjson.loads(event.data) if isinstance(event.data, str | bytes) else event.data
        if "from" not in data or "to" not in data:
            continue
        if "step" in data:
            steps.setdefault(data["step"], []).append((data["from"], data["to"]))
        elif event.kind.startswith("rollback."):  # not the actions' own state moves, tied to the rollback too
            states.append((data["from"], data["to"]))
    return states, steps


def _follows(moves: list[tuple[str, str]], start: str, now: str, table: dict[str, frozenset[str]]) -> None:
    at = start
    for before, after in moves:
        assert before == at, f"a move from {before} recorded while at {at}: {moves}"
        assert after in table[before], f"{before} -> {after} is not in the transition table"
        at = after
    assert at == now, f"the trail ends at {at}, the row says {now}: {moves}"


class Rollbacks(RuleBasedStateMachine):
    rollbacks = Bundle("rollbacks")

    def __init__(self) -> None:
        super().__init__()
        # Each example starts from the same committed database and leaves nothing behind.
        self.atomic = transaction.atomic()
        self.atomic.__enter__()
        self.env.shop.answers.clear()
        self.env.shop.calls.clear()
        self.env.worker.sync.queue.clear()  # type: ignore[attr-defined]
        self.reversed_steps: list[int] = []  # steps whose reverse phase was called
        self.took_effect: list[str] = []  # external ids whose reversal the integrator carried out
        original = self.env.shop.answer

        def answer(operation: str, phase: str, external_id: str, idempotency_key: str) -> tuple[int, dict]:
            if phase == "reverse" and (match := REVERSE_KEY.fullmatch(idempotency_key)):
                self.reversed_steps.append(int(match.group(1)))
            status, body = original(operation, phase, external_id, idempotency_key)
            if phase == "reverse" and status == 200 and body.get("status") == "ok":
                self.took_effect.append(external_id)
            return status, body

        self.env.shop.answer = answer  # type: ignore[method-assign]
        self.tracked: list[int] = []
        self.workers_keep_up = True
        # benefits.reevaluate causes membership.reinstate (one cascade level); record.update stands alone.
        self.targets = [
            *chain(self.env.cast.shop, "benefits.reevaluate", "membership.reinstate", prefix=f"m{id(self)}"),
            *chain(self.env.cast.shop, "record.update", prefix=f"r{id(self)}"),
        ]

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self.atomic.__exit__(None, None, None)
        self.env.shop.answer = type(self.env.shop).answer.__get__(self.env.shop)  # type: ignore[method-assign]

    def person(self, who: str | int, rollback: int = 0) -> Any:
        if isinstance(who, int):
            trigger = Rollback.objects.filter(pk=rollback).values_list("trigger", flat=True).first()
            signers = SIGNERS[trigger] if trigger else PEOPLE
            who = signers[who % len(signers)]
        return getattr(self.env.cast, who) if who != "ivan" else self.env.ivan

    def attempt(self, call: Any) -> Any:
        """A refusal (400, 403, 409 at the API) is a fine answer to a random request; anything else is a bug."""
        try:
            with self.env.capture(execute=True):
                return call()
        except DomainError:
            return None
        finally:
            if self.workers_keep_up:
                self.env.worker()

    @initialize(target=rollbacks, filer=st.sampled_from(FILERS), picks=PICKS, depth=DEPTH)
    def first_request(self, filer: tuple[str, str], picks: list[int], depth: int | None) -> Any:
        """Every history starts with a request its filer may make (the policy may still refuse it)."""
        return self.file(filer, picks, depth)

    @rule(
        target=rollbacks,
        filer=st.one_of(st.sampled_from(FILERS), st.tuples(st.sampled_from(PEOPLE), st.sampled_from(Trigger.values))),
        picks=PICKS,
        depth=DEPTH,
    )
    def request(self, filer: tuple[str, str], picks: list[int], depth: int | None) -> Any:
        return self.file(filer, picks, depth)

    def file(self, filer: tuple[str, str], picks: list[int], depth: int | None) -> Any:
        requester, trigger = filer
        rollback = self.attempt(
            lambda: services.request_rollback(
                requester=self.person(requester),
                trigger=trigger,
                reason="state machine",
                actions=[self.targets[i].pk for i in picks],
                max_cascade_depth=depth,
                reference="ORDER-1" if trigger == Trigger.REGULATORY_ORDER else "",
            )
        )
        if rollback is None:
            return multiple()  # refused: nothing for later rules to act on
        self.tracked.append(rollback.pk)
        return rollback.pk

    @rule(rollback=rollbacks, signer=SOMEONE, decision=st.sampled_from(("approve",) * 3 + ("reject",)))
    def sign(self, rollback: int, signer: str | int, decision: str) -> None:
        self.attempt(lambda: services.sign_off(rollback, signer=self.person(signer, rollback), decision=decision))

    @rule(rollback=rollbacks, actor=SOMEONE)
    def cancel(self, rollback: int, actor: str | int) -> None:
        self.attempt(lambda: services.cancel_rollback(rollback, actor=self.person(actor, rollback)))

    @rule(rollback=rollbacks, actor=SOMEONE)
    def confirm(self, rollback: int, actor: str | int) -> None:
        self.attempt(lambda: confirm_cascade(rollback, actor=self.person(actor, rollback)))

    @rule(rollback=rollbacks, actor=SOMEONE, index=st.integers(0, 2))
    def retry(self, rollback: int, actor: str | int, index: int) -> None:
        steps = list(Step.objects.filter(rollback_id=rollback).order_by("pk").values_list("pk", flat=True))
        if steps:
            self.attempt(lambda: retry_step(rollback, steps[index % len(steps)], actor=self.person(actor, rollback)))

    @rule(rollback=rollbacks, actor=SOMEONE, index=st.integers(0, 2))
    def resolve(self, rollback: int, actor: str | int, index: int) -> None:
        steps = list(Step.objects.filter(rollback_id=rollback).order_by("pk").values_list("pk", flat=True))
        if steps:
            step = steps[index % len(steps)]
            self.attempt(lambda: resolve_step(rollback, step, actor=self.person(actor, rollback), note="done by hand"))

    @rule(
        operation=st.sampled_from(OPERATIONS),
        phase=st.sampled_from(("check", "reverse")),
        answer=st.sampled_from(ANSWERS),
    )
    def integrator_answers(self, operation: str, phase: str, answer: tuple[int, dict]) -> None:
        self.env.shop.script(operation, phase, answer)

    @rule()
    def workers_run(self) -> None:
        self.env.worker()

    @rule()
    def workers_fall_behind_or_catch_up(self) -> None:
        """Behind, what the services queue waits for `workers_run`: other people act in between."""
        self.workers_keep_up = not self.workers_keep_up

    @invariant()
    def states_move_only_along_the_tables(self) -> None:
        for rollback in Rollback.objects.filter(pk__in=self.tracked):
            states, steps = _moves(rollback.pk)
            _follows(states, RollbackState.PENDING_AUTHORIZATION, rollback.state, ROLLBACK_TRANSITIONS)
            for step in Step.objects.filter(rollback=rollback):
                _follows(steps.get(step.pk, []), StepOutcome.PENDING, step.outcome, STEP_TRANSITIONS)

    @invariant()
    def nothing_is_reversed_without_authorization(self) -> None:
        for step in Step.objects.filter(pk__in=self.reversed_steps).select_related("rollback"):
            states, _ = _moves(step.rollback_id)
            assert (RollbackState.PENDING_AUTHORIZATION, RollbackState.AUTHORIZED) in states, (
                f"step {step.pk} was reversed, its rollback never authorized: {states}"
            )
            assert step.depth <= step.rollback.confirmed_depth

    @invariant()
    def no_action_is_reversed_twice(self) -> None:
        assert len(self.took_effect) == len(set(self.took_effect)), f"reversed more than once: {self.took_effect}"

    @invariant()
    def one_person_counts_once_and_nobody_signs_their_own_request(self) -> None:
        for rollback in Rollback.objects.filter(pk__in=self.tracked):
            signers = list(SignOff.objects.filter(rollback=rollback).values_list("signer_id", flat=True))
            assert len(signers) == len(set(signers)), f"rollback {rollback.pk}: someone signed twice"
            assert rollback.requested_by_id not in signers, f"rollback {rollback.pk}: signed by its requester"


def test_random_rollback_histories_keep_the_invariants(cast, shop, worker, django_capture_on_commit_callbacks):
    Rollbacks.env = SimpleNamespace(  # type: ignore[attr-defined]
        cast=cast,
        ivan=colleague("ivan", "incident_commander"),
        shop=shop,
        worker=worker,
        capture=django_capture_on_commit_callbacks,
    )
    run_state_machine_as_test(
        Rollbacks,
        settings=settings(
            max_examples=40,
            stateful_step_count=30,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
