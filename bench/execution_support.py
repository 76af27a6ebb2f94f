"""What bench/execution.py runs beside the workers: the python reversal handler its python-method action types
name, and a fast local integrator (`python bench/execution_support.py PORT`) that checks each signature and
answers ok, remembering its answer per Idempotency-Key. `python bench/execution_support.py PORT LATENCY_MS` answers
each call after that many milliseconds, like a real integrator, and counts the calls open at once: `GET /stats`
answers {"calls", "most_open"}, `POST /stats` starts the count again."""

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from policies.methods.base import PhaseResult, ReversalCall


def reverse_in_process(call: ReversalCall) -> PhaseResult:
    """An in-process reversal that always succeeds: what is left to measure is the engine's own cost."""
    return PhaseResult(status="ok")


def serve(port: int, latency_ms: int = 0) -> None:
    from policies.methods.webhook import verify_signature

    secret = os.environ["SHOP_WEBHOOK_SECRET"]
    answered: dict[str, bytes] = {}
    lock = threading.Lock()
    stats = {"calls": 0, "open": 0, "most_open": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def answer(self, status: int, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            with lock:
                self.answer(200, json.dumps({"calls": stats["calls"], "most_open": stats["most_open"]}).encode())

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path == "/stats":
                with lock:
                    stats.update(calls=0, most_open=stats["open"])
                self.answer(200, b"{}")
                return
            with lock:
                stats["calls"] += 1
                stats["open"] += 1
                stats["most_open"] = max(stats["most_open"], stats["open"])
            status, data = self.reverse(body)
            self.answer(status, data)

        def reverse(self, body: bytes) -> tuple[int, bytes]:
            """The answer; the call counts as open until it is decided (the caller's slot outlasts that)."""
            try:
                return self.decide(body)
            finally:
                with lock:
                    stats["open"] -= 1

        def decide(self, body: bytes) -> tuple[int, bytes]:
            if latency_ms:
                time.sleep(latency_ms / 1000)
            if not verify_signature(secret, self.headers.get("X-Rollback-Signature", ""), body):
                status, data = 401, b'{"status":"failed","detail":"bad signature"}'
            else:
                key = self.headers.get("Idempotency-Key", "")
                with lock:
                    data = answered.setdefault(key, json.dumps({"status": "ok"}).encode())
                status = 200
            return status, data

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 1024  # many workers' calls arrive at once

    server = Server(("127.0.0.1", port), Handler)
    server.serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 0)
