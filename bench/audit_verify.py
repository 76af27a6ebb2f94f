"""How fast `verify_audit` recomputes the audit chain on PostgreSQL.

Fills a database of its own (created if missing) with a chain of events hashed by the same function the
application uses, loaded with COPY, then times `audit.verification.verify_chain` over all of it and prints events
verified per second. The chain is rebuilt on each run unless --reuse finds one of the right length.

    .venv/bin/python bench/audit_verify.py                       # 1,000,000 events, processes = cores
    .venv/bin/python bench/audit_verify.py --events 2000000 --processes 1 --repeat 5
"""

import argparse
import os
import resource
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KINDS = (
    "action.recorded",
    "action.state_changed",
    "rollback.requested",
    "rollback.signoff",
    "rollback.step.reversed",
    "communication.sent",
)
ACTORS = ("shop", "alice", "vera", "carl", "ines", "system", "lena")


def event_data(seq: int) -> dict[str, object]:
    """Data shaped like the real events': ids, amounts, a reason now and then with characters that need escaping."""
    data: dict[str, object] = {
        "external_id": f"run-{seq // 7}/refund-{seq}",
        "action_type": "refund.issue",
        "subject": f"customer:{seq % 5000}",
        "payload": {"amount": f"{seq % 500}.{seq % 100:02d}", "currency": "EUR"},
    }
    if seq % 11 == 0:
        data["reason"] = 'customer says "the refund was wrong"'
    if seq % 97 == 0:
        data["note"] = "café\tß\\n ☃"
    return data


def ensure_database(name: str) -> str:
    import psycopg

    base = os.environ.get("BENCH_PG", "postgresql://root@127.0.0.1:5432")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    return f"{base}/{name}"


def fill(events: int) -> float:
    """Replace the trail with `events` chained events; returns seconds taken."""
    from django.db import connection, transaction

    from audit.chain import GENESIS_HASH, canonical_data, event_hash, format_at

    started = time.perf_counter()
    first_at = datetime(2026, 1, 1, tzinfo=UTC)
    with transaction.atomic(), connection.cursor() as cursor:
        # The bench is the database's superuser: it empties the trail as the test suite's flush does.
        cursor.execute("SET LOCAL rollback_console.audit_maintenance = on")
        cursor.execute("TRUNCATE audit_auditevent, audit_auditlink")
        previous = GENESIS_HASH
        columns = "seq, at, actor, kind, action_id, rollback_id, data, prev_hash, hash"
        with cursor.cursor.copy(f"COPY audit_auditevent ({columns}) FROM STDIN") as copy:
            for seq in range(1, events + 1):
                at = first_at + timedelta(microseconds=seq * 1237)  # some fractions end in zeros, some are zero
                actor, kind = ACTORS[seq % len(ACTORS)], KINDS[seq % len(KINDS)]
                action_id = seq // 3 if seq % 4 else None
                rollback_id = seq // 40 if kind.startswith("rollback") else None
                data = canonical_data(event_data(seq))
                digest = event_hash(seq, format_at(at), actor, kind, action_id, rollback_id, data, previous)
                copy.write_row((seq, at, actor, kind, action_id, rollback_id, data, previous, digest))
                previous = digest
        cursor.execute("UPDATE audit_auditchainhead SET seq = %s, hash = %s WHERE id = 1", (events, previous))
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE audit_auditevent")
    return time.perf_counter() - started


def _client_cpu_seconds() -> float:
    """CPU used by this process and its finished worker processes (the database server's is not counted)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--database", default="rc_bench_audit")
    parser.add_argument("--processes", type=int, default=None, help="default: one per core, at most 4")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reuse", action="store_true", help="keep a chain of the right length if there is one")
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = ensure_database(args.database)
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-padded-to-the-fifty-characters-required")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rollback_console.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from audit.models import AuditChainHead
    from audit.verification import verify_chain

    call_command("migrate", "audit", verbosity=0)
    AuditChainHead.objects.get_or_create(pk=1)
    if args.reuse and AuditChainHead.objects.get(pk=1).seq == args.events and verify_chain().ok:
        print(f"reusing the chain of {args.events:,} events in {args.database}")
    else:
        seconds = fill(args.events)
        print(f"filled {args.events:,} events in {seconds:.1f} s ({args.events / seconds:,.0f} events/s)")

    rates = []
    for run in range(1, args.repeat + 1):
        load = os.getloadavg()[0]
        cpu_before = _client_cpu_seconds()
        started = time.perf_counter()
        verdict = verify_chain(processes=args.processes)
        seconds = time.perf_counter() - started
        cpu = _client_cpu_seconds() - cpu_before
        if not verdict.ok:
            print(f"verification failed: {verdict.as_dict()}")
            return 1
        rates.append(verdict.events / seconds)
        print(
            f"run {run}: verified {verdict.events:,} events in {seconds:.2f} s = {rates[-1]:,.0f} events/s "
            f"(client CPU {cpu:.2f} s, load average before {load:.1f})"
        )
    print(
        f"verify_chain on {os.cpu_count()} cores, processes={args.processes or 'default'}: "
        f"median {statistics.median(rates):,.0f} events/s, best {max(rates):,.0f} events/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
