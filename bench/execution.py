"""How fast the workers reverse a large incident rollback, on PostgreSQL and Redis with two worker processes.

    .venv/bin/python bench/execution.py                   # its own database rc_bench_exec, Redis db 6
    .venv/bin/python bench/execution.py --chains 500      # a smaller run
    .venv/bin/python bench/execution.py --broker redis://127.0.0.1:6379/7
    .venv/bin/python bench/execution.py --chains 100 --latency-ms 0,50,200 --scaling --max-in-flight 64

It (re)creates the database, migrates it, seeds the people and a policy whose action types form chains
order -> points -> tier -> benefit, once with python-method reversals (an in-process handler that answers ok) and
once with webhook-method reversals (a local integrator process that checks each signature and answers ok). For
each it records `--chains` chains of four actions (2,500 chains: 10,000 actions), files an incident rollback of
the chains' first actions (the cascade reaches the rest, three levels deep), signs it off, and times the
`celery -A rollback_console worker --pool prefork -c 2` from authorization to `completed`. Then it runs a small
and a large rollback in-process, counting the queries each step costs, to show that the count does not grow with
the rollback's size. The worker and the integrator are killed on the way out.

`--latency-ms 0,50,200` runs the webhook rollback once per latency, the integrator answering each call after that
many milliseconds, and prints the most calls it saw open at once (never more than `--max-in-flight`, the policy's
`[integrators.shop] max_in_flight`); `--scaling` runs it at 50 ms with one worker process and with two.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PYTHON = str(ROOT / ".venv" / "bin" / "python")
CELERY = str(ROOT / ".venv" / "bin" / "celery")
SECRET = "bench-shop-secret"
RECEIVER_PORT = 8791

MANIFEST = """
version = "bench-execution"

[integrators.shop]
reversal_url = "http://127.0.0.1:{port}/reversals"
notify_url = "http://127.0.0.1:{port}/notifications"
secret_env = "SHOP_WEBHOOK_SECRET"
max_in_flight = {max_in_flight}

[communications]
internal = ["rollbacks@example.com"]

{types}

[triggers.incident]
signoffs = [{{ role = "incident_commander", count = 1 }}]
requested_by = ["incident_commander"]
notify = ["internal"]
"""
LEVELS = ("order", "points", "tier", "benefit")


def action_types(kind: str) -> str:
    if kind == "python":
        reversal = '{{ method = "python", handler = "bench.execution_support.reverse_in_process" }}'
    else:
        reversal = '{{ method = "webhook", integrator = "shop", operation = "{name}.revoke" }}'
    tables = []
    for index, level in enumerate(LEVELS):
        cascades = f'cascades_to = ["{kind}.{LEVELS[index + 1]}"]' if index + 1 < len(LEVELS) else ""
        tables.append(
            f'[action_types."{kind}.{level}"]\nreversibility = "full"\n'
            f"reversal = {reversal.format(name=level)}\n{cascades}\n"
        )
    return "\n".join(tables)


def manifest(max_in_flight: int) -> str:
    types = action_types("python") + "\n" + action_types("webhook")
    return MANIFEST.format(port=RECEIVER_PORT, types=types, max_in_flight=max_in_flight)


def prepare_database(name: str) -> None:
    env = {**os.environ, "PGHOST": "127.0.0.1", "PGUSER": "root"}
    subprocess.run(["dropdb", "--if-exists", "--force", name], env=env, check=True)
    subprocess.run(["createdb", name], env=env, check=True)
    subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=os.environ, check=True)


@contextmanager
def process(command: list[str], log_path: Path, ready: str | None = None) -> Iterator[subprocess.Popen]:
    """A subprocess in a session of its own, killed as a group on the way out."""
    with open(log_path, "w") as log:
        child = subprocess.Popen(
            command, cwd=ROOT, env=os.environ, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 60
        while ready and ready not in log_path.read_text():
            if child.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"{command[0]} did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        yield child
    finally:
        with suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def seed(max_in_flight: int) -> Any:
    from django.contrib.auth.models import Group, User

    from policies.services import load_policy

    people = {}
    for name, role in (("shop", "integrator"), ("alice", "reviewer"), ("ines", "incident_commander")):
        user, _ = User.objects.get_or_create(username=name)
        user.groups.set([Group.objects.get(name=role)])
        people[name] = user
    people["ivan"], _ = User.objects.get_or_create(username="ivan")
    people["ivan"].groups.set([Group.objects.get(name="incident_commander")])
    load_policy(manifest(max_in_flight), actor="bench")
    return people


def record_chains(people: Any, kind: str, chains: int) -> list[int]:
    """`chains` chains of four actions; returns the ids of their first actions."""
    from actions.models import Action
    from actions.services import record_actions

    run = uuid.uuid4().hex[:8]
    items = []
    for chain in range(chains):
        previous = None
        for level in LEVELS:
            external_id = f"{run}-{chain}-{level}"
            items.append(
                {
                    "external_id": external_id,
                    "action_type": f"{kind}.{level}",
                    "subject": f"customer:{chain}",
                    "payload": {"chain": chain},
                    "executed_at": "2026-11-28T10:00:00Z",
                    "approved_by": "alice",
                    "approved_at": "2026-11-28T09:59:30Z",
                    "caused_by": [previous] if previous else [],
                }
            )
            previous = external_id
    for start in range(0, len(items), 1000):
        record_actions(people["shop"], items[start : start + 1000])
    return list(
        Action.objects.filter(external_id__startswith=f"{run}-", action_type=f"{kind}.order").values_list(
            "pk", flat=True
        )
    )


def timed_rollback(people: Any, kind: str, chains: int) -> dict[str, Any]:
    from django.db.models import Count

    from rollbacks.models import Rollback
    from rollbacks.services import request_rollback, sign_off

    targets = record_chains(people, kind, chains)
    started = time.monotonic()
    rollback = request_rollback(requester=people["ines"], trigger="incident", reason=f"bench {kind}", actions=targets)
    planned = time.monotonic() - started
    started = time.monotonic()
    sign_off(rollback.pk, signer=people["ivan"], decision="approve")  # queues the rollback on commit
    while True:
        state = Rollback.objects.values_list("state", flat=True).get(pk=rollback.pk)
        if state in ("completed", "partially_completed", "failed"):
            break
        if time.monotonic() - started > 900:
            sys.exit(f"the {kind} rollback did not finish in 15 minutes (state {state})")
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    steps = rollback.steps.count()
    outcomes = dict(rollback.steps.values_list("outcome").annotate(n=Count("pk")).order_by())
    return {"kind": kind, "state": state, "steps": steps, "outcomes": outcomes, "seconds": elapsed, "plan": planned}


def queries_per_step(people: Any, chains: int) -> float:
    """Run a python-method rollback in this process, counting the queries of its steps and level changes."""
    from unittest import mock

    from django.db import connection

    from rollbacks import execution, tasks
    from rollbacks.services import request_rollback, sign_off

    targets = record_chains(people, "python", chains)
    queued: list[tuple[str, Any]] = []
    with (
        mock.patch.object(tasks.run_rollback_task, "delay", lambda pk: queued.append(("rollback", pk))),
        mock.patch.object(tasks.execute_steps_task, "delay", lambda ids: queued.append(("steps", ids))),
        mock.patch.object(tasks.send_communication_task, "delay", lambda pk: queued.append(("communication", pk))),
    ):
        rollback = request_rollback(requester=people["ines"], trigger="incident", reason="count", actions=targets)
        sign_off(rollback.pk, signer=people["ivan"], decision="approve")
        count = 0

        def counter(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            nonlocal count
            count += 1
            return execute(sql, params, many, context)

        while queued:
            kind, argument = queued.pop(0)
            if kind == "communication":
                from rollbacks.communications import send_communication

                send_communication(argument)
                execution.run_rollback(rollback.pk)
                continue
            with connection.execute_wrapper(counter):
                if kind == "rollback":
                    execution.run_rollback(argument)
                else:
                    execution.run_steps(argument)
    return count / rollback.steps.count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chains", type=int, default=2500, help="chains of four actions (2,500: 10,000 actions)")
    parser.add_argument("--database", default="rc_bench_exec")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/6")
    parser.add_argument("--latency-ms", default="", help="comma-separated integrator latencies, e.g. 0,50,200")
    parser.add_argument("--scaling", action="store_true", help="also one worker process against two at 50 ms")
    parser.add_argument("--max-in-flight", type=int, default=64, help="the integrator's max_in_flight")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (prefork concurrency)")
    parser.add_argument("--skip-queries", action="store_true", help="skip the in-process query count")
    args = parser.parse_args()

    os.environ.update(
        {
            "DATABASE_URL": f"postgres://root@127.0.0.1:5432/{args.database}",
            "CELERY_BROKER_URL": args.broker,
            "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-secret-key-padded-to-the-fifty-characters-required"),
            "SHOP_WEBHOOK_SECRET": SECRET,
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": "rollback_console.settings",
            "LOG_LEVEL": "WARNING",
            "PYTHON_REVERSAL_MODULES": "bench.execution_support",  # the in-process handler's module
        }
    )
    prepare_database(args.database)
    import django

    django.setup()
    from rollback_console.celery import app

    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge("celery")
    people = seed(args.max_in_flight)
    from rollbacks.circuits import reset_circuits

    reset_circuits()
    logs = Path(f"/tmp/rc-bench-exec-{os.getpid()}")
    logs.mkdir(exist_ok=True)

    def worker(processes: int) -> list[str]:
        command = [CELERY, "-A", "rollback_console", "worker", "--pool", "prefork", "-c", str(processes), "-l", "info"]
        return [*command, "--without-gossip", "--without-mingle", "--without-heartbeat"]

    def receiver(latency_ms: int) -> list[str]:
        return [PYTHON, str(ROOT / "bench" / "execution_support.py"), str(RECEIVER_PORT), str(latency_ms)]

    def run(kind: str, latency_ms: int, processes: int) -> float:
        with (
            process(receiver(latency_ms), logs / "receiver.log"),
            process(worker(processes), logs / "worker.log", ready="ready."),
        ):
            result = timed_rollback(people, kind, args.chains)
            stats = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{RECEIVER_PORT}/stats").read())
        rate = float(result["steps"] / result["seconds"])
        latency = f"at {latency_ms:3} ms, " if kind == "webhook" else ""
        print(
            f"{kind:8} {latency}{processes} worker process{'es' if processes > 1 else ''}: {result['steps']:6} steps "
            f"in {result['seconds']:6.1f} s: {rate:7.1f} steps/s  ({result['state']}, {result['outcomes']}; "
            + (f"{stats['calls']} calls, at most {stats['most_open']} open at once; " if kind == "webhook" else "")
            + f"request with its plan took {result['plan']:.1f} s)",
            flush=True,
        )
        return rate

    latencies = [int(text) for text in args.latency_ms.split(",") if text.strip()]
    run("python", 0, args.workers)
    for latency_ms in latencies or [0]:
        run("webhook", latency_ms, args.workers)
    if args.scaling:
        one, two = run("webhook", 50, 1), run("webhook", 50, 2)
        print(f"scaling at 50 ms: two worker processes {two / one:.2f}x one", flush=True)
    if args.skip_queries:
        return
    small, large = max(args.chains // 50, 5), max(args.chains // 5, 50)
    print(
        f"queries per step: {queries_per_step(people, small):.1f} for {small * 4} steps, "
        f"{queries_per_step(people, large):.1f} for {large * 4} steps (python method, in-process)"
    )
    print(f"logs: {logs}")


if __name__ == "__main__":
    main()
