"""What beat's announcing run costs with many requests waiting, on PostgreSQL.

    .venv/bin/python bench/announcements.py                    # its own database rc_bench_announce, 100,000 pending
    .venv/bin/python bench/announcements.py --pending 20000 --runs 5

It seeds the pending requests as bench/queue_page.py does (bulk, bench only), then times: one run that finds them
all new (it announces one batch, 500 requests to their two verifiers) and sending what it wrote into Django's
in-memory mail outbox; and, once every request is marked announced, reminded and warned (bulk, bench only), the
run beat makes every minute when nothing is new: the work that waiting costs. Each with its query count.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DATABASE = "postgres://root@127.0.0.1:5432/rc_bench_announce"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pending", type=int, default=100_000, help="pending requests (default 100,000)")
    parser.add_argument("--runs", type=int, default=5, help="quiet runs measured (default 5)")
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE))
    args = parser.parse_args()

    from bench.queue_page import seed_pending, start_django

    start_django(args.database, EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
    from django.core import mail
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from rollbacks import announcements, dispatch
    from rollbacks.models import Announcement, Rollback

    mail.outbox = []
    queued: list[int] = []
    # No broker here: what a run queues is counted, and the first batch sent in this process.
    dispatch.queue_announcement_deliveries = queued.extend  # type: ignore[assignment]
    announcements.queue_announcement_deliveries = queued.extend  # type: ignore[assignment]

    started = time.perf_counter()
    seed_pending(args.pending)
    print(f"seeded {args.pending:,} pending requests in {time.perf_counter() - started:.1f} s (bulk, bench only)")

    connection.queries_log.clear()
    with CaptureQueriesContext(connection) as queries:
        begun = time.perf_counter()
        announcements.announce_inbox_items()
        first = time.perf_counter() - begun
    print(
        f"first run: announced {Announcement.objects.count():,} requests to {len(queued):,} people in "
        f"{first * 1000:.0f} ms ({len(queries)} queries)"
    )
    begun = time.perf_counter()
    for pk in queued:
        announcements.send_announcement(pk)
    sent = time.perf_counter() - begun
    print(f"sent {len(mail.outbox):,} emails (in-memory backend) in {sent * 1000:.0f} ms")

    now = timezone.now()
    Announcement.objects.bulk_create(
        [
            Announcement(
                item=f"signoff:{pk}",
                kind="signoff",
                purpose=purpose,
                rollback_id=pk,
                since=created,
                subject="bench",
                body="bench",
            )
            for pk, created in Rollback.objects.filter(state="pending_authorization").values_list("pk", "created_at")
            for purpose in ("new", "reminder", "window_warning")
        ],
        ignore_conflicts=True,
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    timings = []
    connection.queries_log.clear()
    for _ in range(args.runs):
        with CaptureQueriesContext(connection) as queries:
            begun = time.perf_counter()
            announcements.announce_inbox_items(now)
            timings.append(time.perf_counter() - begun)
    print(
        f"quiet run with {args.pending:,} announced and waiting: median {statistics.median(timings) * 1000:.0f} ms "
        f"(min {min(timings) * 1000:.0f}, max {max(timings) * 1000:.0f}; {len(queries)} queries)"
    )


if __name__ == "__main__":
    main()
