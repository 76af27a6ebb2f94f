"""What bench/execution.py runs beside the workers: the python reversal handler its python-method action types
name, and a fast local integrator (`python bench/execution_support.py PORT`) that checks each signature and
answers ok, remembering its answer per Idempotency-Key."""

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from policies.methods.base import PhaseResult, ReversalCall


def reverse_in_process(call: ReversalCall) -> PhaseResult:
    """An in-process reversal that always succeeds: what is left to measure is the engine's own cost."""
    return PhaseResult(status="ok")


def serve(port: int) -> None:
    from policies.methods.webhook import verify_signature

    secret = os.environ["SHOP_WEBHOOK_SECRET"]
    answered: dict[str, bytes] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if not verify_signature(secret, self.headers.get("X-Rollback-Signature", ""), body):
                status, data = 401, b'{"status":"failed","detail":"bad signature"}'
            else:
                key = self.headers.get("Idempotency-Key", "")
                with lock:
                    data = answered.setdefault(key, json.dumps({"status": "ok"}).encode())
                status = 200
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
