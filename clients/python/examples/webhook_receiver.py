"""A webhook receiver for Rollback Console in the standard library and this client: reversal calls, customer
notifications and integrator events on one port. Run it with your webhook secret:

    SHOP_WEBHOOK_SECRET=... python webhook_receiver.py 8001

and point your manifest's `reversal_url`, `notify_url` and `events_url` at http://127.0.0.1:8001/...
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rollback_console_client import InvalidWebhook, WebhookReceiver
from rollback_console_client.webhooks import Delivery

receiver = WebhookReceiver(os.environ["SHOP_WEBHOOK_SECRET"])


def act(delivery: Delivery) -> dict[str, Any]:
    """Runs once per idempotency key; a retry of the same call gets this answer again without running it."""
    if delivery.phase is not None:  # a reversal call: check, reverse, verify
        print(f"reversal {delivery.phase} of {delivery.body['action']['external_id']} ({delivery.idempotency_key})")
        return {"status": "ok"}
    print(f"{delivery.event}: {json.dumps(delivery.body)} ({delivery.idempotency_key})")
    return {"status": "ok"}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            status, answer = 200, receiver.handle(body, dict(self.headers), act)
        except InvalidWebhook as error:
            status, answer = error.status, {"status": "failed", "detail": str(error)}
        encoded = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(encoded)))
        self.end_headers()
        self.wfile.write(encoded)


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8001
    print(f"Receiving Rollback Console's webhooks on http://127.0.0.1:{port}/")
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
