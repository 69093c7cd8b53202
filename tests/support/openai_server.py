"""A real loopback OpenAI-compatible HTTP server for tests: the upstream, not a mock.

`FakeOpenAI` serves GET /v1/models and POST /v1/chat/completions on 127.0.0.1
from a daemon thread. A reply is "echo: " + the last user message's text; usage
counts whitespace-separated words. Streaming sends one SSE chunk per word and
flushes each, so a client sees them arrive one by one (slowed by `chunk_delay`).

Special model ids: "fake-error" answers HTTP 500 {"error": {"message": "upstream
exploded"}}; "fake-slow" sleeps `slow_seconds` before answering. With
`require_key` set, a request without that Bearer key gets a 401 JSON error.

Use it as a context manager or with start()/stop(). What it saw:
- `requests`: (path, headers, json body or None) per request, in arrival order;
- `chunk_sent_at`: time.monotonic() when each chunk of the latest stream was sent;
- `client_disconnected`: set when a streaming client went away mid-stream.
"""

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_MODELS = ["fake-small", "fake-large"]
CREATED = 1_700_000_000
DISCONNECT_ERRORS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class FakeOpenAI:
    """An OpenAI-compatible server on a free loopback port."""

    def __init__(
        self,
        *,
        models: list[str] | None = None,
        require_key: str | None = None,
        chunk_delay: float = 0.0,
        slow_seconds: float = 2.0,
    ) -> None:
        self.models = list(DEFAULT_MODELS if models is None else models)
        self.require_key = require_key
        self.chunk_delay = chunk_delay
        self.slow_seconds = slow_seconds
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self.chunk_sent_at: list[float] = []
        self.client_disconnected = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The OpenAI base URL, /v1 included."""
        assert self._server is not None, "start() the server first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> "FakeOpenAI":
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        # Keep-alive handler threads would make server_close() wait for clients.
        self._server.block_on_close = False
        self._server.fake = self  # type: ignore[attr-defined]
        # A short poll interval makes stop() (shutdown) return quickly.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-openai",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def model_list(self) -> dict[str, Any]:
        data = [
            {"id": model, "object": "model", "created": CREATED, "owned_by": "fake"}
            for model in self.models
        ]
        return {"object": "list", "data": data}


def last_user_text(messages: list[dict]) -> str:
    """Return the text of the last user message, whether a string or a list of parts."""
    for message in reversed(messages or []):
        if message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def content_text(content: Any) -> str:
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict) and "text" in p]
        return " ".join(parts)
    return content if isinstance(content, str) else ""


def word_count(text: str) -> int:
    return len(text.split())


def usage_for(messages: list[dict], reply: str) -> dict[str, int]:
    prompt = sum(word_count(content_text(m.get("content"))) for m in messages or [])
    completion = word_count(reply)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def reply_words(reply: str) -> list[str]:
    """Split a reply into chunks that keep their trailing whitespace, so they join back."""
    return re.findall(r"\S+\s*", reply) or [reply]


def stream_chunk(model: str, delta: dict, finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 so streams use chunked transfer encoding, as OpenAI's do.
    protocol_version = "HTTP/1.1"

    @property
    def fake(self) -> FakeOpenAI:
        return self.server.fake  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean

    def do_GET(self) -> None:
        self._record(None)
        if not self._authorised():
            return
        if self.path.rstrip("/") == "/v1/models":
            self._send_json(200, self.fake.model_list())
        else:
            self._send_error(404, f"No route for GET {self.path}")

    def do_POST(self) -> None:
        body = self._read_json()
        self._record(body)
        if not self._authorised():
            return
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send_error(404, f"No route for POST {self.path}")
        elif not isinstance(body, dict):
            self._send_error(400, "The body must be a JSON object.")
        elif body.get("model") == "fake-error":
            self._send_error(500, "upstream exploded", kind="server_error")
        else:
            if body.get("model") == "fake-slow":
                time.sleep(self.fake.slow_seconds)
            self._complete(body)

    def _complete(self, body: dict) -> None:
        messages = body.get("messages") or []
        reply = "echo: " + last_user_text(messages)
        usage = usage_for(messages, reply)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self._stream(body.get("model", ""), reply, usage if include_usage else None)
            return
        self._send_json(
            200,
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", ""),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            },
        )

    def _stream(self, model: str, reply: str, usage: dict | None) -> None:
        final = stream_chunk(model, {}, "stop")
        if usage is not None:
            final["usage"] = usage
        chunks = [stream_chunk(model, {"role": "assistant"})]
        chunks += [stream_chunk(model, {"content": word}) for word in reply_words(reply)]
        self.fake.chunk_sent_at = []
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for index, item in enumerate([*chunks, final]):
                if index and self.fake.chunk_delay:
                    time.sleep(self.fake.chunk_delay)
                self._write_chunk(f"data: {json.dumps(item)}\n\n")
            self._write_chunk("data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except DISCONNECT_ERRORS:
            self.fake.client_disconnected.set()
            self.close_connection = True

    def _write_chunk(self, text: str) -> None:
        data = text.encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()
        self.fake.chunk_sent_at.append(time.monotonic())

    def _read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    def _record(self, body: Any) -> None:
        self.fake.requests.append((self.path, dict(self.headers.items()), body))

    def _authorised(self) -> bool:
        key = self.fake.require_key
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return True
        self._send_error(
            401, "Incorrect API key provided.", kind="invalid_request_error", code="invalid_api_key"
        )
        return False

    def _send_error(
        self, status: int, message: str, *, kind: str = "invalid_request_error", code=None
    ) -> None:
        self._send_json(status, {"error": {"message": message, "type": kind, "code": code}})

    def _send_json(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
