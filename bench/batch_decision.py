"""How long a batch decision takes on the server (POST /console/rollbacks/decide/), on PostgreSQL.

    .venv/bin/python bench/batch_decision.py                   # its own database rc_bench_batch, 20,000 pending
    .venv/bin/python bench/batch_decision.py --pending 100000 --runs 3

It seeds pending reviewer_error requests as bench/queue_page.py does (bulk, bench only), then, as the verifier
vera through Django's test client (middleware, form, rollbacks.services.sign_off_many, template), approves
batches of 1, 25 (a queue page) and 100 (the most a batch takes) requests not signed before, and prints per
batch size the median time, the time per request and the queries per request. Each request is signed by
sign_off in its own transaction, so the cost grows with the batch, by design. Celery publishes to an in-memory
broker: nothing executes.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DATABASE = "postgres://root@127.0.0.1:5432/rc_bench_batch"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pending", type=int, default=20_000, help="pending requests (default 20,000)")
    parser.add_argument("--runs", type=int, default=5, help="batches measured per size (default 5)")
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE))
    args = parser.parse_args()

    from bench.queue_page import seed_pending, start_django

    sizes = (1, 25, 100)
    needed = args.runs * sum(sizes) + 1
    if args.pending < needed:
        parser.error(f"--pending must be at least {needed} for {args.runs} runs")
    start_django(args.database, CELERY_BROKER_URL="memory://")
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from rollbacks.models import Rollback, RollbackState

    started = time.perf_counter()
    seed_pending(args.pending)
    print(f"seeded {args.pending:,} pending requests in {time.perf_counter() - started:.1f} s (bulk, bench only)")

    client = Client()
    client.force_login(User.objects.get(username="vera"))
    # The sign-off requests only: seed_pending also leaves the inbox's other kinds (a paused rollback, steps).
    pending = Rollback.objects.filter(state=RollbackState.PENDING_AUTHORIZATION, trigger="reviewer_error")
    unsigned = iter(pending.order_by("-pk").values_list("pk", flat=True))
    client.post("/console/rollbacks/decide/", {"rollback": [next(unsigned)], "decision": "approve"})  # warm up
    for size in sizes:
        timings, queries_each = [], []
        for _ in range(args.runs):
            ids = [next(unsigned) for _ in range(size)]
            with CaptureQueriesContext(connection) as queries:
                begun = time.perf_counter()
                response = client.post("/console/rollbacks/decide/", {"rollback": ids, "decision": "approve"})
                timings.append(time.perf_counter() - begun)
            assert response.status_code == 200, response.content[:500]
            assert f"You approved {size} of {size} ".encode() in response.content
            queries_each.append(len(queries))
        assert Rollback.objects.filter(state=RollbackState.AUTHORIZED).count() > 0
        median = statistics.median(timings)
        print(
            f"batch of {size:3d}: median {median * 1000:8.1f} ms  ({median * 1000 / size:.1f} ms a request; "
            f"min {min(timings) * 1000:.1f}, max {max(timings) * 1000:.1f}; "
            f"{statistics.median(queries_each) / size:.1f} queries a request)"
        )


if __name__ == "__main__":
    main()
