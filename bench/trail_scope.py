"""What reading the trail costs a reader who is not an auditor (the scope runs as subqueries) on PostgreSQL.

Fills a database of its own with a trail of --events events (no hashing: the chain is not what is measured),
--rollbacks rollbacks, half of them customer requests that customer service may see (guardian group permissions,
as request_rollback grants them), then times what `GET /api/v1/audit/events/` runs for carl (customer service)
and for an auditor: the count and the first page, a page deep in the trail (`after_seq`), and one rollback's trail.

    .venv/bin/python bench/trail_scope.py                      # 1,000,000 events, 20,000 rollbacks
    .venv/bin/python bench/trail_scope.py --events 200000 --reuse
"""

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.audit_verify import ensure_database  # noqa: E402 (the path above first)

PAGE = 50


def fill(events: int, rollbacks: int) -> None:
    from django.contrib.auth.models import Group, User
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection, transaction
    from guardian.models import GroupObjectPermission

    from policies.selectors import current_policy
    from rollbacks.models import Rollback

    ines = User.objects.get(username="ines")
    version_id = current_policy()[0]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL rollback_console.audit_maintenance = on")
        cursor.execute("TRUNCATE audit_auditevent, audit_auditlink")
        cursor.execute("TRUNCATE rollbacks_rollback, guardian_groupobjectpermission CASCADE")
        made = Rollback.objects.bulk_create(
            [
                Rollback(
                    trigger="customer_request" if n % 2 else "incident",
                    reason="bench",
                    requested_by=ines,
                    policy_version_id=version_id,
                    max_cascade_depth=1,
                    confirmed_depth=1,
                )
                for n in range(rollbacks)
            ],
            batch_size=5000,
        )
        content_type = ContentType.objects.get_for_model(Rollback)
        permission = content_type.permission_set.get(codename="view_rollback")
        service = Group.objects.get(name="customer_service")
        GroupObjectPermission.objects.bulk_create(
            [
                GroupObjectPermission(group=service, permission=permission, content_type=content_type, object_pk=r.pk)
                for r in made
                if r.trigger == "customer_request"
            ],
            batch_size=5000,
        )
        ids = [r.pk for r in made]
        first_at = datetime(2026, 1, 1, tzinfo=UTC)
        columns = "seq, at, actor, kind, action_id, rollback_id, data, prev_hash, hash"
        with cursor.cursor.copy(f"COPY audit_auditevent ({columns}) FROM STDIN") as copy:
            for seq in range(1, events + 1):
                share = seq % 10
                rollback_id = ids[seq % len(ids)] if share < 4 else None  # 40% a rollback's
                action_id = seq // 3 if share < 9 else None  # 10% tied to neither
                kind = "rollback.step.reversed" if rollback_id else ("action.recorded" if action_id else "auth.failed")
                at = first_at + timedelta(microseconds=seq * 1237)
                copy.write_row((seq, at, "bench", kind, action_id, rollback_id, '{"n":1}', "0" * 64, "0" * 64))
        cursor.execute("UPDATE audit_auditchainhead SET seq = %s WHERE id = 1", (events,))
    with connection.cursor() as cursor:
        for table in ("audit_auditevent", "rollbacks_rollback", "guardian_groupobjectpermission"):
            cursor.execute(f"VACUUM ANALYZE {table}")


def timed(label: str, run, repeat: int) -> None:  # type: ignore[no-untyped-def]
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        runs.append((time.perf_counter() - started) * 1000)
    print(f"{label}: median {statistics.median(runs):.1f} ms, best {min(runs):.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rollbacks", type=int, default=20_000)
    parser.add_argument("--database", default="rc_bench_trail")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="keep a trail of the right length if there is one")
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = ensure_database(args.database)
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rollback_console.settings")
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from audit.models import AuditChainHead, AuditEvent
    from audit.selectors import audit_events
    from rollbacks.selectors import trail_scope_for
    from tests.conftest import seed

    call_command("migrate", verbosity=0)
    seed()
    if not (args.reuse and AuditEvent.objects.count() == args.events):
        started = time.perf_counter()
        fill(args.events, args.rollbacks)
        seconds = time.perf_counter() - started
        print(f"filled {args.events:,} events and {args.rollbacks:,} rollbacks in {seconds:.0f} s")
    AuditChainHead.objects.get_or_create(pk=1)

    carl, audrey = User.objects.get(username="carl"), User.objects.get(username="audrey")
    hidden = AuditEvent.objects.filter(rollback_id__isnull=False).order_by("-seq").values_list("rollback_id", flat=True)
    one_rollback = hidden.first()
    for name, user in (("carl (customer service)", carl), ("audrey (auditor)", audrey)):
        scope = trail_scope_for(user)
        events = audit_events(scope=scope)
        timed(f"{name}: count", events.count, args.repeat)
        timed(f"{name}: first page", lambda events=events: list(events[:PAGE]), args.repeat)
        deep = audit_events(scope=scope, after_seq=args.events // 2)
        timed(f"{name}: a page from the middle (after_seq)", lambda deep=deep: list(deep[:PAGE]), args.repeat)
        of_rollback = audit_events(scope=scope, rollback_id=one_rollback)
        timed(f"{name}: one rollback's trail, page and count", lambda q=of_rollback: (q.count(), list(q[:PAGE])), 3)
    print("carl's first page:", audit_events(scope=trail_scope_for(carl))[:PAGE].explain())
    return 0


if __name__ == "__main__":
    sys.exit(main())
