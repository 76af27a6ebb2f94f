from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The server-rendered review console: pages over the same services and selectors the API calls."""

    name = "console"
    verbose_name = "Review console"
