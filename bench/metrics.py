"""How long GET /api/v1/metrics/ and the metrics page take on the server over many rollbacks, on PostgreSQL.

    .venv/bin/python bench/metrics.py                      # its own database rc_bench_metrics, 20,000 rollbacks
    .venv/bin/python bench/metrics.py --rollbacks 100000 --runs 5

It seeds as bench/queue_page.py does (bulk rows as request_rollback leaves them: pending reviewer_error requests
by bob over refunds alice approved, filed over the last days), then, in SQL and for this bench only: every fifth
request was filed by alice herself (a self-flag), every third was authorized by victor an hour after filing
(with his sign-off row), every seventh rejected by vera. It asks for the API and the page as the auditor through
Django's test client and prints each one's median time and query count.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
DEFAULT_DATABASE = "postgres://root@127.0.0.1:5432/rc_bench_metrics"


def decide_some() -> None:
    from django.contrib.auth.models import User
    from django.db import connection

    alice, victor, vera = (User.objects.get(username=name).pk for name in ("alice", "victor", "vera"))
    with connection.cursor() as cursor:
        cursor.execute("UPDATE rollbacks_rollback SET requested_by_id = %s WHERE id %% 5 = 0", [alice])
        cursor.execute(
            "UPDATE rollbacks_rollback SET state = 'authorized', authorized_at = created_at + interval '1 hour' "
            "WHERE id % 3 = 0"
        )
        cursor.execute("UPDATE rollbacks_rollback SET state = 'rejected', finished_at = created_at WHERE id % 21 = 7")
        cursor.execute(
            "INSERT INTO rollbacks_signoff (rollback_id, signer_id, role, decision, comment, at) "
            "SELECT id, %s, 'verifier', 'approve', '', created_at + interval '1 hour' FROM rollbacks_rollback "
            "WHERE state = 'authorized'",
            [victor],
        )
        cursor.execute(
            "INSERT INTO rollbacks_signoff (rollback_id, signer_id, role, decision, comment, at) "
            "SELECT id, %s, 'verifier', 'reject', '', created_at FROM rollbacks_rollback WHERE state = 'rejected'",
            [vera],
        )
        cursor.execute("ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollbacks", type=int, default=20_000, help="rollbacks (default 20,000)")
    parser.add_argument("--runs", type=int, default=5, help="requests per page measured (default 5)")
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE))
    args = parser.parse_args()

    from queue_page import seed_pending, start_django

    start_django(args.database)
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    started = time.perf_counter()
    seed_pending(args.rollbacks)
    decide_some()
    print(f"seeded {args.rollbacks:,} rollbacks in {time.perf_counter() - started:.1f} s (bulk, bench only)")

    client = Client()
    client.force_login(User.objects.get(username="audrey"))
    for label, url in {"GET /api/v1/metrics/": "/api/v1/metrics/", "metrics page": "/console/metrics/"}.items():
        client.get(url)  # warm the connection, the policy cache and the template loader
        timings = []
        for _ in range(args.runs):
            with CaptureQueriesContext(connection) as queries:
                begun = time.perf_counter()
                response = client.get(url)
                timings.append(time.perf_counter() - begun)
            assert response.status_code == 200, response.status_code
        print(
            f"{label:22s} median {statistics.median(timings) * 1000:8.1f} ms  "
            f"(min {min(timings) * 1000:.1f}, max {max(timings) * 1000:.1f}; {len(queries)} queries)"
        )


if __name__ == "__main__":
    main()
