"""A large incident from request to `completed`: time, peak memory of the web side and of the worker, queries.

    .venv/bin/python bench/incident.py                    # 100,000 actions; its own database rc_bench_incident
    .venv/bin/python bench/incident.py --actions 10000    # validate first at 10,000
    .venv/bin/python bench/incident.py --broker redis://127.0.0.1:6379/7

It (re)creates the database, migrates it, seeds the people and bench/execution.py's policy (python-method
reversals that answer ok in-process), and records `--actions` actions through `actions.services.record_actions`
(batches of 1,000, which go in by COPY): half of them `python.order`, each caused by nothing, and half
`python.points`, each caused by one order. Then:

- filing: `POST /api/v1/rollbacks/` with the selector `{"action_type": "python.order"}` as an incident commander
  (the orders are the targets, the cascade reaches the points: one step per action, two levels), through the
  whole DRF stack (`APIClient`, view, service, serializer) in a Python process of its own, which reports its
  peak RSS (`getrusage`), its time and its queries;
- signing: `POST .../signoffs/` by a second incident commander, in another process of its own (this queues the
  run on a worker started beforehand: `celery -A rollback_console worker --pool prefork -c 2`);
- waiting for `completed`, polling the state once a second;
- reading: `GET /api/v1/rollbacks/{id}/`, `GET .../steps/?outcome=reversed` and the console's request page, in a
  process of its own (peak RSS, time and queries of each);
- the worker's peak RSS: `VmHWM` from /proc of the main process and of each pool process, read before stopping it;
- queries per step: a small and a larger incident (`--count-sizes`) planned, signed and executed in this process
  with the tasks run inline, every query counted.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.execution import CELERY, PYTHON, SECRET, manifest, prepare_database, process  # noqa: E402

TERMINAL = ("completed", "partially_completed", "failed")
BATCH = 1000


def environment(database: str, broker: str) -> None:
    os.environ.update(
        {
            "DATABASE_URL": f"postgres://root@127.0.0.1:5432/{database}",
            "CELERY_BROKER_URL": broker,
            "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-secret-key-padded-to-the-fifty-characters-required"),
            "SHOP_WEBHOOK_SECRET": SECRET,
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": "rollback_console.settings",
            "LOG_LEVEL": "WARNING",
            "PYTHON_REVERSAL_MODULES": "bench.execution_support",
            "THROTTLE_USER_RATE": "100000/min",
            "ALLOWED_HOSTS": "localhost",
        }
    )


def seed() -> None:
    from django.contrib.auth.models import Group, User

    from policies.services import load_policy

    for name, role in (("shop", "integrator"), ("alice", "reviewer"), ("ines", "incident_commander")):
        user, _ = User.objects.get_or_create(username=name)
        user.groups.set([Group.objects.get(name=role)])
    ivan, _ = User.objects.get_or_create(username="ivan")
    ivan.groups.set([Group.objects.get(name="incident_commander")])
    load_policy(manifest(max_in_flight=64), actor="bench")  # python reversals: the bound is not used


def record(actions: int) -> str:
    """`actions` actions, orders and the points each granted, in batches; returns the run's external id prefix."""
    from django.contrib.auth.models import User

    from actions.services import record_actions

    shop = User.objects.get(username="shop")
    run = uuid.uuid4().hex[:8]
    chains = actions // 2
    for start in range(0, chains, BATCH // 2):
        items = []
        for chain in range(start, min(chains, start + BATCH // 2)):
            common = {
                "subject": f"customer:{chain}",
                "payload": {"chain": chain},
                "executed_at": "2026-11-28T10:00:00Z",
                "approved_by": "alice",
                "approved_at": "2026-11-28T09:59:30Z",
            }
            order = f"{run}-{chain}-order"
            items.append({**common, "external_id": order, "action_type": "python.order", "caused_by": []})
            items.append(
                {**common, "external_id": f"{run}-{chain}-points", "action_type": "python.points", "caused_by": [order]}
            )
        record_actions(shop, items)
    return run


# -- the web side, each call in a process of its own


def web(step: str, rollback_id: int) -> None:
    """Run one web step (`file`, `sign` or `read`) and print a JSON line: its time, queries and peak RSS."""
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results: dict[str, Any] = {"step": step, "rss_after_setup_mb": baseline / 1024}

    def timed(name: str, call: Any) -> Any:
        started = time.monotonic()
        with CaptureQueriesContext(connection) as queries:
            response = call()
        assert response.status_code in (200, 201), (name, response.status_code, response.content[:2000])
        results[name] = {
            "seconds": round(time.monotonic() - started, 2),
            "queries": len(queries),
            "bytes": len(response.content),
        }
        return response

    api = APIClient(SERVER_NAME="localhost")
    if step == "file":
        api.force_authenticate(User.objects.get(username="ines"))
        body = {"trigger": "incident", "reason": "bench incident", "selector": {"action_type": "python.order"}}
        response = timed("file", lambda: api.post("/api/v1/rollbacks/", body, format="json"))
        results["rollback"] = response.json()["id"]
    elif step == "sign":
        api.force_authenticate(User.objects.get(username="ivan"))
        body = {"decision": "approve", "comment": "go"}
        timed("sign", lambda: api.post(f"/api/v1/rollbacks/{rollback_id}/signoffs/", body, format="json"))
    else:
        api.force_authenticate(User.objects.get(username="ivan"))
        detail = timed("detail", lambda: api.get(f"/api/v1/rollbacks/{rollback_id}/"))
        results["step_counts"] = detail.json().get("step_counts")
        timed("steps_page", lambda: api.get(f"/api/v1/rollbacks/{rollback_id}/steps/?outcome=reversed&offset=50000"))
        console = Client(SERVER_NAME="localhost")
        console.force_login(User.objects.get(username="ivan"))
        timed("console_page", lambda: console.get(f"/console/rollbacks/{rollback_id}/?steps_page=50&outcome=reversed"))
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(results))


def in_own_process(step: str, rollback_id: int = 0) -> dict[str, Any]:
    finished = subprocess.run(
        [PYTHON, __file__, "--web", step, "--rollback", str(rollback_id)],
        cwd=ROOT,
        env=os.environ,
        capture_output=True,
        text=True,
    )
    if finished.returncode:
        sys.exit(f"web step {step} failed:\n{finished.stderr[-4000:]}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


# -- the worker's memory


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


# -- queries per step, in this process


def queries_for(actions: int) -> tuple[int, int, int]:
    """(steps, queries to file and sign, queries to execute) of an incident over `actions` fresh actions."""
    from unittest import mock

    from django.contrib.auth.models import User
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from rollbacks import execution, tasks
    from rollbacks.communications import send_communication
    from rollbacks.models import Rollback
    from rollbacks.services import request_rollback, sign_off

    run = record(actions)
    queued: list[tuple[str, Any]] = []
    patches = (
        mock.patch.object(tasks.run_rollback_task, "delay", lambda pk: queued.append(("rollback", pk))),
        mock.patch.object(tasks.execute_steps_task, "delay", lambda ids: queued.append(("steps", ids))),
        mock.patch.object(tasks.send_communication_task, "delay", lambda pk: queued.append(("message", pk))),
        mock.patch.object(tasks.send_integrator_events_task, "delay", lambda pk: None),
    )
    with patches[0], patches[1], patches[2], patches[3]:
        ines, ivan = User.objects.get(username="ines"), User.objects.get(username="ivan")
        with CaptureQueriesContext(connection) as filing:
            rollback = request_rollback(requester=ines, trigger="incident", reason="count", actions=_orders(run))
            sign_off(rollback.pk, signer=ivan, decision="approve")
        with CaptureQueriesContext(connection) as executing:
            while queued:
                kind, argument = queued.pop(0)
                if kind == "rollback":
                    execution.run_rollback(argument)
                elif kind == "steps":
                    execution.run_steps(argument)
                else:
                    send_communication(argument)
                    execution.run_rollback(rollback.pk)
    state = Rollback.objects.values_list("state", flat=True).get(pk=rollback.pk)
    assert state == "completed", state
    return rollback.steps.count(), len(filing), len(executing)


def _orders(run: str) -> list[int]:
    from actions.models import Action

    return list(
        Action.objects.filter(external_id__startswith=f"{run}-", action_type="python.order").values_list(
            "pk", flat=True
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actions", type=int, default=100_000)
    parser.add_argument("--database", default="rc_bench_incident")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/6")
    parser.add_argument("--count-sizes", default="200,2000", help="incident sizes whose queries are counted")
    parser.add_argument("--web", choices=["file", "sign", "read"], help=argparse.SUPPRESS)
    parser.add_argument("--rollback", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.web:
        web(args.web, args.rollback)
        return

    environment(args.database, args.broker)
    prepare_database(args.database)
    import django

    django.setup()
    from rollback_console.celery import app
    from rollbacks.models import Rollback

    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge("celery")
    seed()
    started = time.monotonic()
    record(args.actions)
    print(f"recorded {args.actions:,} actions in {time.monotonic() - started:.1f} s", flush=True)

    logs = Path(f"/tmp/rc-bench-incident-{os.getpid()}")
    logs.mkdir(exist_ok=True)
    worker = [CELERY, "-A", "rollback_console", "worker", "--pool", "prefork", "-c", "2", "-l", "info"]
    worker += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    with process(worker, logs / "worker.log", ready="ready.") as celery:
        requested = time.monotonic()
        filing = in_own_process("file")
        rollback_id = filing["rollback"]
        print(f"filed: {json.dumps(filing)}", flush=True)
        signing = in_own_process("sign", rollback_id)
        print(f"signed: {json.dumps(signing)}", flush=True)
        while True:
            state = Rollback.objects.values_list("state", flat=True).get(pk=rollback_id)
            if state in TERMINAL:
                break
            if time.monotonic() - requested > 3600:
                sys.exit(f"the incident did not finish in an hour (state {state})")
            time.sleep(1)
        total = time.monotonic() - requested
        main_rss = peak_rss_mb(celery.pid)
        pool = {pid: round(peak_rss_mb(pid), 1) for pid in children(celery.pid)}
    steps = Rollback.objects.get(pk=rollback_id).steps.count()
    print(f"{steps:,} steps from request to {state} in {total:.1f} s ({steps / total:.0f} steps/s)")
    print(f"worker peak RSS (VmHWM): main process {main_rss:.1f} MB, pool processes {pool}")
    reading = in_own_process("read", rollback_id)
    print(f"read: {json.dumps(reading)}", flush=True)
    sizes = [int(size) for size in args.count_sizes.split(",") if size]
    for size in sizes:
        steps, filing_queries, executing_queries = queries_for(size)
        print(
            f"queries, {steps:,} steps: file and sign {filing_queries}, execute {executing_queries} "
            f"({executing_queries / steps:.2f} per step)"
        )
    print(f"logs: {logs}")


if __name__ == "__main__":
    main()
