from django.apps import AppConfig


class AgentsConfig(AppConfig):
    """The MCP server through which AI agents reach the product (web layer: no domain app imports it)."""

    name = "agents"
    verbose_name = "Agents (MCP)"
