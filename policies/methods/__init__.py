"""The reversal methods a manifest may name. Adding one: a module beside these and a line in METHODS."""

from policies.methods.base import ReversalMethod
from policies.methods.manual import ManualMethod
from policies.methods.python import PythonMethod
from policies.methods.webhook import WebhookMethod

METHODS: dict[str, ReversalMethod] = {
    "webhook": WebhookMethod(),
    "python": PythonMethod(),
    "manual": ManualMethod(),
}
