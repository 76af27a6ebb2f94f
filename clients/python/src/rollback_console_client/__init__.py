"""The Python client for Rollback Console: record agent actions, preview reversals, read rollbacks, file customer
requests, and verify and deduplicate the webhooks Rollback Console sends. See README.md for examples."""

from rollback_console_client.client import RollbackConsole
from rollback_console_client.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    RollbackConsoleError,
    ServerUnavailable,
    Unauthorized,
)
from rollback_console_client.webhooks import (
    DeliveryStore,
    InMemoryDeliveryStore,
    InvalidWebhook,
    WebhookReceiver,
    sign,
    verify_signature,
)

__all__ = [
    "Conflict",
    "DeliveryStore",
    "Forbidden",
    "InMemoryDeliveryStore",
    "InvalidRequest",
    "InvalidWebhook",
    "NotFound",
    "PayloadTooLarge",
    "RollbackConsole",
    "RollbackConsoleError",
    "ServerUnavailable",
    "Unauthorized",
    "WebhookReceiver",
    "sign",
    "verify_signature",
]
