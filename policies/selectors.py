from functools import lru_cache

from policies.manifest import Manifest, build_manifest
from policies.models import PolicyActivation, PolicyVersion


class NoPolicyLoaded(Exception):
    pass


@lru_cache(maxsize=32)
def _manifest_of(version_id: int) -> Manifest:
    # Versions are immutable, so a parsed manifest can be kept for the life of the process.
    return build_manifest(PolicyVersion.objects.values_list("manifest", flat=True).get(pk=version_id))


def current_policy() -> tuple[int, Manifest]:
    """The current version's id and manifest: one query, the parse cached per version."""
    version_id = PolicyActivation.objects.order_by("-id").values_list("version_id", flat=True).first()
    if version_id is None:
        raise NoPolicyLoaded("No policy manifest is loaded: run `python manage.py load_policy FILE`.")
    return version_id, _manifest_of(version_id)


def policy_of(version_id: int) -> Manifest:
    return _manifest_of(version_id)
