from django.db import models


class PolicyVersion(models.Model):
    """A loaded policy manifest. Immutable: its identity is the hash of its content, and actions point at the
    version that was current when they were recorded, so a policy reversal can select what one version allowed."""

    label = models.CharField(max_length=200)
    content_hash = models.CharField(max_length=64, unique=True)
    source = models.TextField(help_text="The TOML text as it was loaded.")
    manifest = models.JSONField(help_text="The parsed manifest, as validated.")
    loaded_at = models.DateTimeField(auto_now_add=True)
    loaded_by = models.CharField(max_length=150)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.label} ({self.content_hash[:12]})"


class PolicyActivation(models.Model):
    """Each time a version is made current. The newest row names the current version; the table is the history
    of which policy governed when."""

    version = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT, related_name="activations")
    activated_at = models.DateTimeField(auto_now_add=True)
    activated_by = models.CharField(max_length=150)

    class Meta:
        ordering = ["-id"]
        get_latest_by = "id"

    def __str__(self) -> str:
        return f"{self.version} current since {self.activated_at:%Y-%m-%d %H:%M}"
