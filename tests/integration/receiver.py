"""A test integrator on 127.0.0.1: checks every signature, applies each reversal's effect once per
Idempotency-Key (a repeat gets the first answer back, as the contract asks of integrators), and can be scripted to
answer unmet, 4xx or 5xx, or to hold one call until the test has killed the worker that made it."""

import json
import os
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from policies.methods.webhook import verify_signature


@dataclass
class Hold:
    external_id: str
    phase: str
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


@dataclass
class ReceiverState:
    calls: list[tuple[str, str, str]] = field(default_factory=list)  # (idempotency key, phase, external id)
    effects: Counter = field(default_factory=Counter)  # reversals applied, per idempotency key
    reversed_by: dict[str, set[str]] = field(default_factory=dict)  # external id -> keys whose reverse took effect
    answered: dict[str, tuple[int, dict]] = field(default_factory=dict)  # key -> first answer, replayed
    notifications: list[dict[str, Any]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)  # the integrator events' idempotency keys, as received
    bad_signatures: int = 0
    scripts: dict[tuple[str, str], list[Any]] = field(default_factory=dict)  # (external id | template, phase)
    hold: Hold | None = None


class Receiver:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state = ReceiverState()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                status, answer = receiver.handle(self.path, dict(self.headers), body)
                data = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the worker that asked was killed meanwhile

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "Receiver":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        self.release()
        with self.lock:
            self.state = ReceiverState()

    def release(self) -> None:
        hold = self.state.hold
        if hold is not None:
            hold.release.set()

    def script(self, name: str, phase: str, *answers: Any) -> None:
        """Answers for calls about `name` (an external id, or a template for notifications) in `phase`, one per
        call: a status code (503, 400 ...) or a JSON body sent with 200."""
        with self.lock:
            self.state.scripts[(name, phase)] = list(answers)

    def hold_at(self, external_id: str, phase: str) -> Hold:
        hold = Hold(external_id, phase)
        with self.lock:
            self.state.hold = hold
        return hold

    def _scripted(self, name: str, phase: str) -> Any:
        queue = self.state.scripts.get((name, phase))
        return queue.pop(0) if queue else None

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict]:
        secret = os.environ["SHOP_WEBHOOK_SECRET"]
        if not verify_signature(secret, headers.get("X-Rollback-Signature", ""), body):
            with self.lock:
                self.state.bad_signatures += 1
            return 401, {"status": "failed", "detail": "bad signature"}
        key = headers.get("Idempotency-Key", "")
        payload = json.loads(body)
        if path == "/notifications":
            return self._notification(key, payload)
        if path == "/events":
            with self.lock:
                self.state.events.append(key)
            return 200, {"status": "ok"}
        return self._reversal(key, payload)

    def _notification(self, key: str, payload: dict) -> tuple[int, dict]:
        with self.lock:
            scripted = self._scripted(payload["template"], "notify")
            if isinstance(scripted, int):
                return scripted, {"detail": "scripted"}
            if key not in self.state.answered:
                self.state.notifications.append({**payload, "key": key})
                self.state.answered[key] = (200, {"status": "ok"})
            return self.state.answered[key]

    def _reversal(self, key: str, payload: dict) -> tuple[int, dict]:
        phase, external_id = payload["phase"], payload["action"]["external_id"]
        with self.lock:
            self.state.calls.append((key, phase, external_id))
            if key in self.state.answered:
                answer = self.state.answered[key]
            else:
                scripted = self._scripted(external_id, phase)
                if isinstance(scripted, int):
                    return scripted, {"status": "failed", "detail": f"scripted {scripted}"}
                answer = (200, scripted or {"status": "ok"})
                self.state.answered[key] = answer
                if phase == "reverse" and answer[1]["status"] == "ok":
                    self.state.effects[key] += 1
                    self.state.reversed_by.setdefault(external_id, set()).add(key)
            hold = self.state.hold
        if hold is not None and (hold.external_id, hold.phase) == (external_id, phase) and not hold.reached.is_set():
            hold.reached.set()  # the effect is applied; the answer waits until the worker is gone
            hold.release.wait(timeout=60)
        return answer

    def reverse_calls(self, external_id: str) -> int:
        return sum(1 for _, phase, seen in self.state.calls if phase == "reverse" and seen == external_id)
