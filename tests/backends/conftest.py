"""Fixtures for backend tests: the tiny local model, an OpenAI-compatible stub server on
127.0.0.1, and a clean registry cache around every test."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from personalization.backends import registry
from tests.model_fixtures import build_tiny_chat_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_chat_model(tmp_path_factory.mktemp("tiny-model") / "tiny-chat")


@pytest.fixture(autouse=True)
def fresh_registry_cache() -> Iterator[None]:
    registry.clear_cache()
    yield
    registry.clear_cache()


class StubOpenAIHandler(BaseHTTPRequestHandler):
    """Answers like an OpenAI-compatible server; the request's `model` picks the behaviour.

    model "ok": a normal completion echoing the last message; "status-NNN": that HTTP status;
    "bad-json": a 200 whose body is not JSON; "no-choices": valid JSON without choices.
    Requests with `logprobs` get a fixed top_logprobs list.
    """

    server: StubServer

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        model = str(body.get("model", ""))
        if self.path != "/v1/chat/completions":
            self._send(404, {"error": f"no route {self.path}"})
        elif model.startswith("status-"):
            self._send(int(model.removeprefix("status-")), {"error": "scripted failure"})
        elif model == "bad-json":
            self._send_raw(200, b"this is not json")
        elif model == "no-choices":
            self._send(200, {"id": "x", "object": "chat.completion"})
        elif body.get("logprobs"):
            top = [
                {"token": "YES", "logprob": -0.4},
                {"token": " YES", "logprob": -2.0},
                {"token": "NO", "logprob": -1.2},
                {"token": "Maybe", "logprob": -3.5},
            ]
            content = [{"token": "YES", "logprob": -0.4, "top_logprobs": top}]
            self._send(
                200, {"choices": [{"index": 0, "message": {"content": "YES"}, "logprobs": {"content": content}}]}
            )
        else:
            last = body["messages"][-1]["content"]
            self._send(
                200,
                {
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": f"echo: {last}"},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": len(last.split()), "completion_tokens": 2},
                },
            )

    def _send(self, status: int, payload: dict) -> None:
        self._send_raw(status, json.dumps(payload).encode())

    def _send_raw(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's signature)
        return


class StubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), StubOpenAIHandler)
        self.requests: list[dict] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


@pytest.fixture
def stub_server() -> Iterator[StubServer]:
    server = StubServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
