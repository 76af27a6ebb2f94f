from django.apps import AppConfig


class PoliciesConfig(AppConfig):
    name = "policies"

    def ready(self) -> None:
        # The audit app may not import policies: it learns of the manifests an evidence bundle carries from here.
        from audit.bundle import register_manifest_source
        from policies.selectors import manifests_for_evidence

        register_manifest_source(manifests_for_evidence)
