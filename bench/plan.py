"""How long a policy_reversal takes to plan and to request over 10,000 actions with cascade links, on PostgreSQL.

    .venv/bin/python bench/plan.py                     # its own database rc_bench_plan, 10,000 actions, 3 runs
    .venv/bin/python bench/plan.py --actions 50000 --runs 5

It (re)creates the database, migrates it, seeds the demo policy and the people involved, then for each run
builds a graph (two fifths refunds approved under one policy version, each granting points, every second grant
upgrading a tier: two cascade levels) and times:
- plan_rollback: resolving the selector, walking the cascade, counting the plan (no writes);
- request_rollback: the same plus freezing one step per action, moving every action to rollback_pending (each
  audited), guardian permissions and the `rollback.requested` event linked to every planned action.
It prints each figure with its query count, and the median over the runs.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DATABASE = "postgres://root@127.0.0.1:5432/rc_bench_plan"


def recreate_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=10_000, help="actions per graph (default 10,000)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE))
    args = parser.parse_args()

    recreate_database(args.database)
    os.environ["DATABASE_URL"] = args.database
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-padded-to-the-fifty-characters-required")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rollback_console.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")

    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from audit.models import AuditChainHead
    from rollbacks.services import plan_rollback, request_rollback
    from tests.rollbacks.graphs import build_policy_graph, load_demo_policy_as

    call_command("migrate", verbosity=0)
    AuditChainHead.objects.get_or_create(pk=1)
    people = {}
    for name, role in (("shop", "integrator"), ("alice", "reviewer"), ("paula", "policy_owner")):
        people[name], _ = User.objects.get_or_create(username=name)
        people[name].groups.set([Group.objects.get(name=role)])

    plans, requests = [], []
    print(f"policy_reversal over {args.actions:,} actions with cascade links, PostgreSQL ({connection.vendor})")
    for run in range(1, args.runs + 1):
        target_version = load_demo_policy_as(f"bench-targets-{run}")
        later_version = load_demo_policy_as(f"bench-later-{run}")
        refunds = build_policy_graph(
            total=args.actions,
            integrator=people["shop"],
            approver=people["alice"],
            target_version=target_version,
            later_version=later_version,
        )
        request = {
            "requester": people["paula"],
            "trigger": "policy_reversal",
            "reason": "the policy version was withdrawn",
            "selector": {"policy_version": target_version},
        }
        with CaptureQueriesContext(connection) as planned:
            started = time.perf_counter()
            plan = plan_rollback(**request)
            plans.append(time.perf_counter() - started)
        with CaptureQueriesContext(connection) as requested:
            started = time.perf_counter()
            rollback = request_rollback(**request)
            requests.append(time.perf_counter() - started)
        assert plan.counts["actions"] == refunds and rollback.plan["cascade"] == args.actions - refunds
        print(
            f"  run {run}: {refunds:,} targets + {rollback.plan['cascade']:,} cascade -> "
            f"plan_rollback {plans[-1]:.3f} s ({len(planned)} queries), "
            f"request_rollback {requests[-1]:.3f} s ({len(requested)} queries)"
        )
    print(
        f"median: plan_rollback {statistics.median(plans):.3f} s, request_rollback {statistics.median(requests):.3f} s"
    )


if __name__ == "__main__":
    main()
