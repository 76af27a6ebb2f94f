"""What checking the trail costs: `verify_audit --full`, the bundle's standalone `verify.py`, and the incremental
check after new events, with time, events per second and peak memory.

Uses the chain `bench/audit_verify.py` builds (a database of its own, created and filled if needed), then:
1. `manage.py verify_audit --full` as its own process (its peak RSS, and its workers');
2. `manage.py export_audit --bundle DIR`, then `python3 -I -S DIR/verify.py DIR` (standard library only);
3. appends `--new` events through the real writer and times `verify_since_checkpoint` (the periodic check), in
   this process, and `manage.py verify_audit` (the same with Python's and Django's start-up).

    .venv/bin/python bench/audit_evidence.py                     # 1,000,000 events
    .venv/bin/python bench/audit_evidence.py --events 10000000   # takes long to fill; run on a quiet machine
"""

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from audit_verify import ensure_database, fill  # noqa: E402  (the bench's own sibling, found through sys.path)


def run(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MiB, output. GNU time measures the RSS: a child forked from this process would
    count this process's memory as its own until it execs."""
    with tempfile.NamedTemporaryFile("r") as measured:
        started = time.perf_counter()
        result = subprocess.run(
            ["/usr/bin/time", "-o", measured.name, "-f", "%M", *command], env=env, capture_output=True, cwd=ROOT
        )
        seconds = time.perf_counter() - started
        out = (result.stdout + result.stderr).decode()
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{out}")
        rss = int(measured.read().split()[-1]) / 1024
    return seconds, rss, out.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--new", type=int, default=10_000, help="events appended before the incremental check")
    parser.add_argument("--database", default="rc_bench_audit")
    parser.add_argument("--reuse", action="store_true", help="keep a chain of the right length if there is one")
    parser.add_argument("--skip-full", action="store_true", help="skip verify_audit --full")
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = ensure_database(args.database)
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rollback_console.settings")
    workdir = Path(tempfile.mkdtemp(prefix="audit-evidence-"))
    os.environ["AUDIT_ANCHOR_PATH"] = str(workdir / "anchors.jsonl")
    os.environ["AUDIT_ANCHOR_URL"] = ""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import transaction

    from audit.models import AuditChainHead, AuditCheckpoint
    from audit.services import EventSpec, record_events
    from audit.verification import verify_since_checkpoint

    call_command("migrate", verbosity=0)  # every app: the bundle reads the policy versions too
    AuditChainHead.objects.get_or_create(pk=1)
    if args.reuse and AuditChainHead.objects.get(pk=1).seq == args.events:
        print(f"reusing the chain of {args.events:,} events in {args.database}")
    else:
        seconds = fill(args.events)
        print(f"filled {args.events:,} events in {seconds:.1f} s")
    AuditCheckpoint.objects.all().delete()
    env = dict(os.environ)
    python = sys.executable
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    if not args.skip_full:
        seconds, rss, out = run([python, "manage.py", "verify_audit", "--full"], env)
        print(f"verify_audit --full: {args.events / seconds:,.0f} events/s ({seconds:.2f} s), peak RSS {rss:.0f} MiB")
        print(f"  {out[:160]}")

    bundle = workdir / "bundle"
    seconds, rss, _ = run([python, "manage.py", "export_audit", "--bundle", str(bundle), "--anchor", "/dev/null"], env)
    size = (bundle / "events.jsonl").stat().st_size / 2**20
    print(f"export_audit --bundle: {seconds:.2f} s, events.jsonl {size:,.0f} MiB, peak RSS {rss:.0f} MiB")
    seconds, rss, out = run([python, "-I", "-S", str(bundle / "verify.py"), str(bundle)], env)
    print(f"verify.py (python -I -S): {args.events / seconds:,.0f} events/s ({seconds:.2f} s), peak RSS {rss:.0f} MiB")
    print(f"  {out[:160]}")

    if not AuditCheckpoint.objects.exists():
        verify_since_checkpoint()  # the first check reads everything and checkpoints the head
    batch = 1000
    for start in range(0, args.new, batch):
        specs = [
            EventSpec(kind="action.recorded", actor="shop", action_id=n, data={"external_id": f"bench-{n}"})
            for n in range(start, min(start + batch, args.new))
        ]
        with transaction.atomic():
            record_events(specs)
    started = time.perf_counter()
    verdict = verify_since_checkpoint()
    seconds = time.perf_counter() - started
    assert verdict.ok, verdict.as_dict()
    print(f"incremental check after {args.new:,} new events: {seconds * 1000:.0f} ms (verify_since_checkpoint)")
    for start in range(0, args.new, batch):
        specs = [EventSpec(kind="action.recorded", actor="shop", data={"n": n}) for n in range(start, start + batch)]
        with transaction.atomic():
            record_events(specs)
    seconds, rss, out = run([python, "manage.py", "verify_audit"], env)
    print(f"manage.py verify_audit after {args.new:,} more: {seconds:.2f} s with start-up, peak RSS {rss:.0f} MiB")
    print(f"  {out[:160]}")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"(this process: peak RSS {usage.ru_maxrss / 1024:.0f} MiB)")
    shutil.rmtree(workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
