"""How fast actions are recorded over REST, on PostgreSQL behind gunicorn.

    .venv/bin/python bench/intake.py                      # its own database rc_bench_intake, gunicorn -w 2
    .venv/bin/python bench/intake.py --rounds 10 --clients 16
    .venv/bin/python bench/intake.py --target http://127.0.0.1:8000 --token KEY   # a server already running

It (re)creates the database, migrates it, seeds the demo policy, an integrator `shop` with a token and an
approver `alice`, starts gunicorn with bench/intake_settings.py (the project plus a bare DRF ModelViewSet
create of the same Action row at /bench/bare-actions/), then prints actions recorded per second for:
- single POST /api/v1/actions/ from concurrent keep-alive clients (wrk if installed, threads otherwise),
- the bare ModelViewSet create, the same way, for comparison,
- POST /api/v1/actions/batch/ with 100 and with 1,000 actions (each naming the batch's first in caused_by),
- a bare bulk_create of the same 100 rows (bench/intake_urls.py), for comparison with the batch of 100.
The five alternate in short rounds, so each sees the same share of a shared machine's load; the last lines
total every round. Every figure counts only answers with the expected status; any other answer is reported.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")

SEED = """
from django.contrib.auth.models import Group, User
from pathlib import Path
from policies.services import load_policy
for name, role in (("shop", "integrator"), ("alice", "reviewer")):
    user, _ = User.objects.get_or_create(username=name)
    user.groups.set([Group.objects.get(name=role)])
load_policy(Path("policies/manifests/demo.toml").read_text(), actor="bench")
"""


def action(external_id: str, caused_by: list[str] | None = None) -> dict:
    return {
        "external_id": external_id,
        "action_type": "refund.issue",
        "subject": "customer:1001",
        "payload": {"amount": "25.00", "currency": "EUR"},
        "executed_at": "2026-11-28T10:00:00Z",
        "approved_by": "alice",
        "approved_at": "2026-11-28T09:59:30Z",
        "approval_context": {"ticket": "T-9"},
        "caused_by": caused_by or [],
    }


def run(cmd: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def prepare(db_name: str, env: dict[str, str]) -> str:
    """A fresh, migrated, seeded database; returns a new token for `shop`."""
    admin_env = {**env, "PGHOST": "127.0.0.1", "PGUSER": "root"}
    subprocess.run(["dropdb", "--if-exists", "--force", db_name], env=admin_env, check=True)
    subprocess.run(["createdb", db_name], env=admin_env, check=True)
    run([PYTHON, "manage.py", "migrate", "-v", "0"], env)
    run([PYTHON, "manage.py", "shell", "-c", SEED], env)
    return run([PYTHON, "manage.py", "issue_token", "shop", "--expires", "1d", "--actor", "bench"], env).splitlines()[
        -1
    ]


def wait_for(url: str, timeout: float = 30) -> None:
    parsed = urllib.parse.urlsplit(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=2)
            conn.request("GET", "/api/v1/action-types/")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"gunicorn did not answer at {url}")


WRK_SCRIPT = """
local counter = 0
local thread_id = 0
local threads = {}
function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end
function init(args)
  thread_id = wrk.thread:get("thread_id")
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Token %(token)s"
request = function()
  counter = counter + 1
  local body = string.format(%(template)s, "%(prefix)s-" .. thread_id .. "-" .. counter)
  return wrk.format("POST", "%(path)s", nil, body)
end
"""


def single_posts_wrk(base: str, path: str, token: str, clients: int, duration: int) -> dict:
    template = json.dumps(json.dumps(action("EXTERNAL_ID")).replace("EXTERNAL_ID", "%s"))
    script = WRK_SCRIPT % {"token": token, "template": template, "prefix": uuid.uuid4().hex[:8], "path": path}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    threads = min(clients, 2)
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{duration}s", "--latency", "-s", handle.name, base],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(handle.name)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    latencies = out.split("Latency Distribution", 1)[1]
    p50 = re.search(r"\n\s+50%\s+(\S+)", latencies).group(1)
    p99 = re.search(r"\n\s+99%\s+(\S+)", latencies).group(1)
    return {"ok": total - errors, "other": errors, "seconds": duration, "p50": p50, "p99": p99}


def single_posts_threads(base: str, path: str, token: str, clients: int, duration: int) -> dict:
    parsed = urllib.parse.urlsplit(base)
    prefix = uuid.uuid4().hex[:8]
    counts = {"ok": 0, "other": 0}
    lock = threading.Lock()
    stop = time.monotonic() + duration
    headers = {"Content-Type": "application/json", "Authorization": f"Token {token}"}

    def client(number: int) -> None:
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port)
        sent = 0
        ok = other = 0
        while time.monotonic() < stop:
            sent += 1
            conn.request("POST", path, json.dumps(action(f"{prefix}-{number}-{sent}")), headers)
            response = conn.getresponse()
            response.read()
            if response.status == 201:
                ok += 1
            else:
                other += 1
        with lock:
            counts["ok"] += ok
            counts["other"] += other

    workers = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return {**counts, "seconds": duration, "p50": "-", "p99": "-"}


def batches(base: str, token: str, size: int, count: int, clients: int, path: str = "/api/v1/actions/batch/") -> dict:
    """`count` batches of `size` linked actions (each names the batch's first in caused_by), `clients` at once."""
    parsed = urllib.parse.urlsplit(base)
    prefix = uuid.uuid4().hex[:8]
    bodies = []
    for number in range(count):
        first = f"{prefix}-{number}-0"
        items = [action(first)] + [action(f"{prefix}-{number}-{i}", [first]) for i in range(1, size)]
        bodies.append(json.dumps({"actions": items}).encode())
    headers = {"Content-Type": "application/json", "Authorization": f"Token {token}"}
    queue = list(reversed(bodies))
    lock = threading.Lock()
    counts = {"ok": 0, "other": 0}
    latencies: list[float] = []

    def client() -> None:
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
        while True:
            with lock:
                if not queue:
                    return
                body = queue.pop()
            started = time.perf_counter()
            conn.request("POST", path, body, headers)
            response = conn.getresponse()
            text = response.read()
            with lock:
                latencies.append(time.perf_counter() - started)
                if response.status == 201:
                    counts["ok"] += size
                else:
                    counts["other"] += 1
                    print(f"  batch answered {response.status}: {text[:200]!r}", file=sys.stderr)

    started = time.perf_counter()
    workers = [threading.Thread(target=client) for _ in range(clients)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "ok": counts["ok"],
        "other": counts["other"],
        "seconds": elapsed,
        "p50": f"{latencies[len(latencies) // 2] * 1000:.0f}ms",
        "p99": f"{latencies[int(len(latencies) * 0.99)] * 1000:.0f}ms",
    }


def total(results: list[dict]) -> dict:
    return {
        "ok": sum(result["ok"] for result in results),
        "other": sum(result["other"] for result in results),
        "seconds": sum(result["seconds"] for result in results),
        "p50": "-",
        "p99": "-",
    }


def report(label: str, result: dict) -> None:
    rate = result["ok"] / result["seconds"]
    other = f", {result['other']} other answers" if result["other"] else ""
    print(
        f"{label:<58} {rate:>9,.0f} actions/s   ({result['ok']:,} in {result['seconds']:.1f}s, "
        f"p50 {result['p50']}, p99 {result['p99']}{other})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db-name", default="rc_bench_intake")
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--clients", type=int, default=8, help="concurrent keep-alive clients for single posts")
    parser.add_argument("--duration", type=int, default=5, help="seconds per single-post run in each round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the five measurements, alternated")
    parser.add_argument("--batch-clients", type=int, default=2)
    parser.add_argument("--target", help="a running server's base URL (then --token is required)")
    parser.add_argument("--token")
    parser.add_argument("--threads-client", action="store_true", help="use Python threads even if wrk is installed")
    args = parser.parse_args()

    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://root@127.0.0.1:5432/{args.db_name}",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-secret-key-padded-to-the-fifty-characters-required"),
        "SHOP_WEBHOOK_SECRET": "bench",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SETTINGS_MODULE": "bench.intake_settings",
        "LOG_LEVEL": "WARNING",
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/2"),
        # The bench measures intake, not the throttle: rates no bench reaches, so the check still runs on every call
        # (for both endpoints alike) but never answers 429.
        "THROTTLE_USER_RATE": os.environ.get("THROTTLE_USER_RATE", "100000000/min"),
        "THROTTLE_ANON_RATE": os.environ.get("THROTTLE_ANON_RATE", "100000000/min"),
    }
    server = None
    if args.target:
        if not args.token:
            sys.exit("--target needs --token")
        base, token = args.target.rstrip("/"), args.token
    else:
        token = prepare(args.db_name, env)
        base = f"http://127.0.0.1:{args.port}"
        server = subprocess.Popen(
            [
                GUNICORN,
                "rollback_console.wsgi:application",
                "-w",
                str(args.workers),
                "-b",
                f"127.0.0.1:{args.port}",
                "--access-logfile",
                "/dev/null",
                "--log-level",
                "warning",
                "--keep-alive",
                "30",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
    try:
        wait_for(base)
        if server is not None and server.poll() is not None:
            sys.exit(f"gunicorn exited (is port {args.port} taken?)")
        use_wrk = shutil.which("wrk") is not None and not args.threads_client
        single = single_posts_wrk if use_wrk else single_posts_threads
        client_name = "wrk" if use_wrk else "threads"
        print(f"PostgreSQL db {args.db_name}, gunicorn -w {args.workers}, {args.clients} {client_name} clients\n")
        # Warm both endpoints (connections, parse caches) before measuring.
        single(base, "/api/v1/actions/", token, args.clients, 2)
        single(base, "/bench/bare-actions/", token, args.clients, 2)
        # The machine is shared and noisy: alternate the runs in short rounds, so both endpoints see the same load,
        # and report every round and the total over all rounds.
        runs: dict[str, list[dict]] = {}
        for round_number in range(1, args.rounds + 1):
            for label, measure in (
                (
                    "single POST /api/v1/actions/",
                    lambda: single(base, "/api/v1/actions/", token, args.clients, args.duration),
                ),
                (
                    "bare ModelViewSet create (same row)",
                    lambda: single(base, "/bench/bare-actions/", token, args.clients, args.duration),
                ),
                (
                    "batch of 100 (POST /api/v1/actions/batch/)",
                    lambda: batches(base, token, 100, 30, args.batch_clients),
                ),
                (
                    "bare bulk_create of 100 (same rows)",
                    lambda: batches(base, token, 100, 30, args.batch_clients, "/bench/bare-actions/batch/"),
                ),
                ("batch of 1,000", lambda: batches(base, token, 1000, 6, args.batch_clients)),
            ):
                runs.setdefault(label, []).append(measure())
                report(f"round {round_number}: {label}", runs[label][-1])
        print()
        for label, results in runs.items():
            report(f"all rounds: {label}", total(results))
        rate = {label: total(results)["ok"] / total(results)["seconds"] for label, results in runs.items()}
        single_ratio = rate["single POST /api/v1/actions/"] / rate["bare ModelViewSet create (same row)"]
        batch_ratio = rate["batch of 100 (POST /api/v1/actions/batch/)"] / rate["bare bulk_create of 100 (same rows)"]
        print(f"\nsame-run ratios: single posts {single_ratio:.2f}x the bare create, batches of 100 {batch_ratio:.2f}x")
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
