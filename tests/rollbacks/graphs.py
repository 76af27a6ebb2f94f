"""Large action graphs built directly with bulk_create (recording 10,000 actions through the service would test
intake, not planning). Used by the plan's query-count test and by bench/plan.py."""

from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from actions.models import Action, ActionLink
from policies.services import load_policy

DEMO_MANIFEST = Path(settings.BASE_DIR) / "policies" / "manifests" / "demo.toml"


def load_demo_policy_as(label: str) -> int:
    """The demo policy under another label: a version of its own, made current. Returns its id."""
    text = DEMO_MANIFEST.read_text().replace('version = "demo-2026-11"', f'version = "{label}"', 1)
    return load_policy(text, actor="test-setup").version.pk


def build_policy_graph(*, total: int, integrator: Any, approver: Any, target_version: int, later_version: int) -> int:
    """`total` actions: refunds approved under `target_version` (two fifths), each of which granted points, every
    second grant upgrading a tier (recorded under `later_version`). A policy_reversal of `target_version`
    targets the refunds and cascades two levels. Returns the number of refunds."""
    refunds = total * 2 // 5
    now = timezone.now()
    prefix = f"v{target_version}-"

    def action(external_id: str, action_type: str, version: int) -> Action:
        return Action(
            integrator=integrator,
            external_id=prefix + external_id,
            action_type=action_type,
            subject=f"customer:{external_id}",
            payload={"amount": "25.00"},
            executed_at=now - timedelta(days=1),
            approved_by=approver,
            approved_at=now - timedelta(days=1, minutes=1),
            policy_version_id=version,
            reversibility="full",
            reversal_method="webhook",
            window_ends_at=now + timedelta(days=29),
            fingerprint="bulk",
        )

    upstream = Action.objects.bulk_create(
        [action(f"refund-{i}", "refund.issue", target_version) for i in range(refunds)]
    )
    points = Action.objects.bulk_create(
        [action(f"points-{i}", "loyalty.points_grant", later_version) for i in range(refunds)]
    )
    tiers = Action.objects.bulk_create(
        [action(f"tier-{i}", "tier.upgrade", later_version) for i in range(total - 2 * refunds)]
    )
    links = [ActionLink(upstream_id=r.pk, downstream_id=p.pk) for r, p in zip(upstream, points, strict=True)]
    links += [ActionLink(upstream_id=points[2 * i].pk, downstream_id=t.pk) for i, t in enumerate(tiers)]
    ActionLink.objects.bulk_create(links, batch_size=5000)
    return refunds
