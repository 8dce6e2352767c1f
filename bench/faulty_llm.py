"""An OpenAI-compatible chat server on loopback that fails on purpose, one fault at a time.

Used by the LLM-deadline tests and by `bench/llm_deadline.py`. Every fault is bounded by
`duration` (the server gives up and closes the connection), so a client without a deadline of
its own still ends, only late: that is what the tests and the bench tell apart.

Faults (set `FaultyLLM.fault` between questions):
- `ok`: a proper stream (content, `finish_reason: stop`, `[DONE]`).
- `keepalive`: SSE comment lines every `interval` and never any content.
- `drip`: one word every `interval`, never finishing.
- `hang`: reads the request, then says nothing.
- `retry_after`: 429 with `Retry-After: 120`.
- `retry_after_short`: 429 with `Retry-After: 1` on odd requests, a proper stream on even ones.
- `truncated`: two content chunks, then a clean end of body: no finish reason, no `[DONE]`.
- `length`: a proper stream whose finish reason is `length` (the token cap was reached).
- `error`: 500 with an error body.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ANSWER = "New employees receive 25 days of paid annual leave [1]."
FAULTS = (
    "ok",
    "keepalive",
    "drip",
    "hang",
    "retry_after",
    "retry_after_short",
    "truncated",
    "length",
    "error",
)


def chunk(content: str | None = None, finish: str | None = None, role: bool = False) -> bytes:
    delta: dict[str, Any] = {}
    if role:
        delta["role"] = "assistant"
    if content is not None:
        delta["content"] = content
    body = {
        "id": "chatcmpl-faulty",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "faulty",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


def words(text: str) -> list[str]:
    parts = text.split(" ")
    return [part if i == 0 else " " + part for i, part in enumerate(parts)]


@dataclass
class FaultyLLM:
    """The server's state: the current fault and the requests it has received."""

    fault: str = "ok"
    interval: float = 0.5
    duration: float = 30.0
    answer: str = ANSWER
    requests: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def handler_for(state: FaultyLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.send_json(200, {"object": "list", "data": [{"id": "faulty", "object": "model"}]})

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            request = json.loads(self.rfile.read(length) or b"{}")
            state.requests.append(request)
            fault = state.fault
            try:
                if fault == "hang":
                    state.stop.wait(state.duration)
                elif fault == "retry_after" or (
                    fault == "retry_after_short" and len(state.requests) % 2 == 1
                ):
                    wait = "120" if fault == "retry_after" else "1"
                    self.send_json(429, {"error": {"message": "Slow down"}}, {"Retry-After": wait})
                elif fault == "error":
                    self.send_json(500, {"error": {"message": "The model crashed"}})
                else:
                    self.stream(fault)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up: what a deadline does

        def send_json(
            self, status: int, body: object, headers: dict[str, str] | None = None
        ) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def stream(self, fault: str) -> None:
            # No Content-Length and `Connection: close`: the body ends when the socket closes,
            # so `truncated` can end it cleanly at any point.
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            started = time.monotonic()
            self.send(chunk(role=True, content=""))
            if fault == "keepalive":
                while not state.stop.wait(state.interval):
                    self.send(b": keep-alive\n\n")
                    if time.monotonic() - started > state.duration:
                        return
            elif fault == "drip":
                for word in self.forever(words(state.answer)):
                    if state.stop.wait(state.interval):
                        return
                    if time.monotonic() - started > state.duration:
                        return
                    self.send(chunk(word))
            elif fault == "truncated":
                for word in words(state.answer)[:3]:
                    self.send(chunk(word))
            else:  # ok, length, and the second request of retry_after_short
                for word in words(state.answer):
                    self.send(chunk(word))
                self.send(chunk(finish="length" if fault == "length" else "stop"))
                self.send(b"data: [DONE]\n\n")

        def send(self, data: bytes) -> None:
            self.wfile.write(data)
            self.wfile.flush()

        @staticmethod
        def forever(items: list[str]) -> Iterator[str]:
            while True:
                yield from items

    return Handler


@contextmanager
def faulty_llm(**settings: Any) -> Iterator[FaultyLLM]:
    """A running server on a free loopback port; stops its handlers on exit."""
    state = FaultyLLM(**settings)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(state))
    server.daemon_threads = True
    state.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.stop.set()
        server.shutdown()
        server.server_close()
        thread.join()
