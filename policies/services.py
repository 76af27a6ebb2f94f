import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from django.db import transaction

from audit.services import record_event
from policies.manifest import parse_manifest
from policies.models import PolicyActivation, PolicyVersion


@dataclass(frozen=True)
class LoadResult:
    version: PolicyVersion
    created: bool  # a new version was stored
    activated: bool  # it was not current before


def content_hash(raw: dict[str, Any]) -> str:
    """Identity of a manifest: its parsed content, so comments and layout do not make a new version."""
    return hashlib.sha256(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)).hexdigest()


def load_policy(text: str, *, actor: str) -> LoadResult:
    """Validate a manifest and make it current. Raises ManifestError (every error by key path) and changes
    nothing when it is wrong. Identical content reuses its version; it becomes current again if it was not."""
    manifest, raw = parse_manifest(text)
    digest = content_hash(raw)
    with transaction.atomic():
        version, created = PolicyVersion.objects.get_or_create(
            content_hash=digest,
            defaults={"label": manifest.version, "source": text, "manifest": raw, "loaded_by": actor},
        )
        if created:
            record_event(
                "policy.loaded",
                actor=actor,
                data={"version": version.label, "hash": digest, "policy_version_id": version.pk},
            )
        current = PolicyActivation.objects.select_for_update().order_by("-id").first()
        activated = current is None or current.version_id != version.pk
        if activated:
            activate_policy(version, actor=actor)
    return LoadResult(version=version, created=created, activated=activated)


def activate_policy(version: PolicyVersion, *, actor: str) -> PolicyActivation:
    with transaction.atomic():
        activation = PolicyActivation.objects.create(version=version, activated_by=actor)
        record_event(
            "policy.activated",
            actor=actor,
            data={"version": version.label, "hash": version.content_hash, "policy_version_id": version.pk},
        )
    return activation
