from django.db.models import QuerySet

from audit.bundle import BundleManifest
from policies.manifest import Manifest, build_manifest
from policies.models import PolicyActivation, PolicyVersion

NO_POLICY = "No policy manifest is loaded: run `python manage.py load_policy FILE`."


class NoPolicyLoaded(Exception):
    pass


# Parsed manifests by version id, with the content hash they were parsed from. Versions are immutable, but an
# id can come back with other content after a rolled-back load on SQLite, so current_policy checks the hash.
_parsed: dict[int, tuple[str, Manifest]] = {}


def _manifest_of(version_id: int, content_hash: str | None = None) -> Manifest:
    cached = _parsed.get(version_id)
    if cached is not None and content_hash in (None, cached[0]):
        return cached[1]
    stored_hash, raw = PolicyVersion.objects.values_list("content_hash", "manifest").get(pk=version_id)
    manifest = build_manifest(raw)
    _parsed[version_id] = (stored_hash, manifest)
    return manifest


def current_policy() -> tuple[int, Manifest]:
    """The current version's id and manifest: one query, the parse cached per version."""
    current = PolicyActivation.objects.order_by("-id").values_list("version_id", "version__content_hash").first()
    if current is None:
        raise NoPolicyLoaded(NO_POLICY)
    version_id, content_hash = current
    return version_id, _manifest_of(version_id, content_hash)


def policy_version_manifest(version_id: int, content_hash: str) -> Manifest:
    """The manifest of a version whose id and content hash a caller read itself (intake reads them in the query
    it makes anyway): no query while the parse is cached."""
    return _manifest_of(version_id, content_hash)


def policy_of(version_id: int) -> Manifest:
    """The manifest of a version something already points at (an action's, a rollback's)."""
    return _manifest_of(version_id)


def policy_versions() -> QuerySet[PolicyVersion]:
    """Every loaded policy version, newest first; for anyone who may file a rollback (versions are not secret)."""
    return PolicyVersion.objects.order_by("-id")


def manifests_for_evidence() -> list[BundleManifest]:
    """Every policy version as loaded, oldest first, for an audit evidence bundle (`export_audit --bundle`)."""
    versions = PolicyVersion.objects.order_by("id").values_list("id", "label", "content_hash", "source", "loaded_at")
    return [
        BundleManifest(id=pk, label=label, content_hash=digest, source=source, loaded_at=loaded_at.isoformat())
        for pk, label, digest, source, loaded_at in versions
    ]
