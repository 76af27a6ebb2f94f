"""How long the console's queue page (the inbox) takes on the server with 100,000 requests waiting, on PostgreSQL.

    .venv/bin/python bench/queue_page.py                       # its own database rc_bench_queue, 100,000 pending
    .venv/bin/python bench/queue_page.py --pending 20000 --runs 9

It (re)creates its own database, migrates it, seeds the people and the demo policy, and then, for speed and in
this bench only, bulk-creates the rows a real request would have made (one recorded refund per request, the
pending reviewer_error rollback, its required sign-off row, its step, and the guardian permissions) instead of
calling request_rollback 100,000 times. Beside them, one in a hundred of each other kind of inbox item, as the
workers leave them: paused rollbacks (a cascade to confirm), rollbacks with a failed step, and rollbacks with a
not-reversible step and its open remediation task, all for verifiers, their windows spread over the same days, so
the list mixes every kind. It then asks for /console/ as a verifier through Django's test client (the whole server
side: middleware, selectors, template) and prints the time of each page it measured (the first page, a later page,
one kind, one trigger) with its query count, and the median.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DATABASE = "postgres://root@127.0.0.1:5432/rc_bench_queue"
BATCH = 5_000


def recreate_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def start_django(database: str, **environment: str) -> None:
    """A fresh bench database, Django started on it and migrated, with the tests' cast and the demo policy: what
    every bench of the console's pages starts from. `environment` sets further variables before Django starts."""
    recreate_database(database)
    os.environ["DATABASE_URL"] = database
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-padded-to-the-fifty-characters-required")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rollback_console.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    os.environ.update(environment)

    import django

    django.setup()
    from django.core.management import call_command

    from tests.conftest import seed

    call_command("migrate", verbosity=0)
    seed()


def seed_pending(count: int) -> None:
    """`count` pending reviewer_error requests by bob over refunds alice approved, as request_rollback leaves them."""
    from django.contrib.auth.models import Group, Permission, User
    from django.contrib.contenttypes.models import ContentType
    from django.utils import timezone
    from guardian.models import GroupObjectPermission, UserObjectPermission

    from actions.models import Action, ActionState
    from policies.selectors import current_policy
    from rollbacks.models import RequiredSignoff, Rollback, Step

    version_id, _ = current_policy()
    shop, alice, bob = (User.objects.get(username=name) for name in ("shop", "alice", "bob"))
    verifier = Group.objects.get(name="verifier")
    view = Permission.objects.get(codename="view_rollback", content_type__app_label="rollbacks")
    rollback_type = ContentType.objects.get_for_model(Rollback)
    now = timezone.now()
    for start in range(0, count, BATCH):
        size = min(BATCH, count - start)
        actions = Action.objects.bulk_create(
            Action(
                integrator=shop,
                external_id=f"bench-{start + i}",
                action_type="refund.issue",
                subject=f"customer:{(start + i) % 5000}",
                payload={"amount": "25.00", "currency": "EUR"},
                executed_at=now - timedelta(minutes=start + i),
                approved_by=alice,
                approved_at=now - timedelta(minutes=start + i, seconds=30),
                policy_version_id=version_id,
                reversibility="full",
                reversal_method="webhook",
                prerequisites=["account_open"],
                side_effects=["the customer is charged back the refunded amount"],
                window_ends_at=now - timedelta(minutes=start + i) + timedelta(days=30),
                amount="25.00",
                state=ActionState.ROLLBACK_PENDING,
                fingerprint="0" * 64,
            )
            for i in range(size)
        )
        rollbacks = Rollback.objects.bulk_create(
            Rollback(
                trigger="reviewer_error",
                reason=f"refund {start + i} was approved by mistake",
                requested_by=bob,
                policy_version_id=version_id,
                max_cascade_depth=1,
                confirmed_depth=1,
                plan={"actions": 1, "cascade": 0, "irreversible": 0, "window_expired": 0, "action_ids": [a.pk]},
                required_signoffs=[{"role": "verifier", "count": 1}],
                window_closes_at=a.window_ends_at,
            )
            for i, a in enumerate(actions)
        )
        RequiredSignoff.objects.bulk_create(RequiredSignoff(rollback=r, role="verifier", count=1) for r in rollbacks)
        Step.objects.bulk_create(Step(rollback=r, action=a, depth=0) for r, a in zip(rollbacks, actions, strict=True))
        GroupObjectPermission.objects.bulk_create(
            GroupObjectPermission(group=verifier, permission=view, content_type=rollback_type, object_pk=str(r.pk))
            for r in rollbacks
        )
        UserObjectPermission.objects.bulk_create(
            UserObjectPermission(user=bob, permission=view, content_type=rollback_type, object_pk=str(r.pk))
            for r in rollbacks
        )
    seed_other_kinds(max(count // 100, 1), version_id, shop, alice, bob, now)
    # Spread the filing times as a real queue has them (created_at is auto_now_add on insert).
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("UPDATE rollbacks_rollback SET created_at = now() - (id || ' seconds')::interval")
        cursor.execute("ANALYZE")


def seed_other_kinds(count: int, version_id: int, shop, alice, bob, now) -> None:  # type: ignore[no-untyped-def]
    """`count` each of: a paused reviewer_error (depth 0 done, depth 1 awaiting confirmation), one whose step
    failed (partially_completed), and one whose step is not reversible with an open remediation task."""
    from actions.models import Action, ActionState
    from rollbacks.models import RemediationTask, RequiredSignoff, Rollback, Step

    kinds = [("paused", "awaiting_confirmation"), ("failed", "failed"), ("partially_completed", "not_reversible")]
    for state, outcome in kinds:
        actions = Action.objects.bulk_create(
            Action(
                integrator=shop,
                external_id=f"bench-{state}-{i}",
                action_type="refund.issue",
                subject=f"customer:{i % 5000}",
                payload={"amount": "40.00", "currency": "EUR"},
                executed_at=now - timedelta(minutes=i * 97),
                approved_by=alice,
                approved_at=now - timedelta(minutes=i * 97, seconds=30),
                policy_version_id=version_id,
                reversibility="full",
                reversal_method="webhook",
                window_ends_at=now - timedelta(minutes=i * 97) + timedelta(days=30),
                amount="40.00",
                state=ActionState.REVERSAL_FAILED,
                fingerprint="0" * 64,
            )
            for i in range(count)
        )
        rollbacks = Rollback.objects.bulk_create(
            Rollback(
                trigger="reviewer_error",
                reason=f"{state} bench rollback {i}",
                requested_by=bob,
                state=state,
                policy_version_id=version_id,
                max_cascade_depth=0,
                confirmed_depth=0,
                plan={"actions": 1, "cascade": 0, "irreversible": 0, "window_expired": 0, "action_ids": [a.pk]},
                required_signoffs=[{"role": "verifier", "count": 1}],
                window_closes_at=a.window_ends_at,
            )
            for i, a in enumerate(actions)
        )
        RequiredSignoff.objects.bulk_create(RequiredSignoff(rollback=r, role="verifier", count=1) for r in rollbacks)
        steps = Step.objects.bulk_create(
            Step(rollback=r, action=a, depth=0, outcome=outcome, finished_at=now)
            for r, a in zip(rollbacks, actions, strict=True)
        )
        if outcome == "not_reversible":
            RemediationTask.objects.bulk_create(RemediationTask(step=s, reason="not_reversible") for s in steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pending", type=int, default=100_000, help="pending requests (default 100,000)")
    parser.add_argument("--runs", type=int, default=5, help="requests per page measured (default 5)")
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE))
    args = parser.parse_args()

    start_django(args.database)
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    started = time.perf_counter()
    seed_pending(args.pending)
    print(f"seeded {args.pending:,} pending requests in {time.perf_counter() - started:.1f} s (bulk, bench only)")

    client = Client()
    client.force_login(User.objects.get(username="vera"))
    pages = {
        "most urgent first, page 1": "/console/",
        "most urgent first, page 200": "/console/?page=200",
        "kind step, page 1": "/console/?kind=step",
        "trigger reviewer_error, page 3": "/console/?trigger=reviewer_error&page=3",
    }
    for label, url in pages.items():
        client.get(url)  # warm the connection, the policy cache and the template loader
        timings = []
        for _ in range(args.runs):
            with CaptureQueriesContext(connection) as queries:
                begun = time.perf_counter()
                response = client.get(url)
                timings.append(time.perf_counter() - begun)
            assert response.status_code == 200, response.status_code
            assert response.content.count(b"data-inbox-row") == 25, response.content.count(b"data-inbox-row")
        print(
            f"{label:34s} median {statistics.median(timings) * 1000:8.1f} ms  "
            f"(min {min(timings) * 1000:.1f}, max {max(timings) * 1000:.1f}; {len(queries)} queries)"
        )

    # A yardstick for a shared machine: the count of the sign-off queue alone (what the queue page counted before
    # the inbox), so a figure can be read against the load it was measured under.
    from rollbacks.selectors import queue_for

    vera = User.objects.get(username="vera")
    timings = []
    for _ in range(args.runs):
        begun = time.perf_counter()
        queue_for(vera).count()
        timings.append(time.perf_counter() - begun)
    print(f"{'yardstick: queue_for(vera).count()':34s} median {statistics.median(timings) * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
