"""A fake OpenAI upstream: a real HTTP/1.1 server on 127.0.0.1 in a background thread.

It answers the few endpoints the end-to-end tests use, in the shapes the official client parses, and records
every request (method, path, Authorization header, parsed body) so tests can assert what the proxy sent.

Answers are deterministic and never echo the Authorization header: which upstream key a request used is only
visible through `FakeUpstream.requests`, so a test cannot pass by reading it back from the answer.
"""

from __future__ import annotations

import base64
import json
import random
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from fake_accounts import Accounts

# The streamed reply, one piece per `chat.completion.chunk` event.
STREAM_PIECES = ["Hello", " from", " the", " fake", " upstream", "!"]
STREAM_TEXT = "".join(STREAM_PIECES)

MODELS = ["gpt-e2e-mini", "gpt-e2e-large", "text-embedding-e2e"]
EMBEDDING_DIMENSIONS = 16


def chat_reply(messages: list[dict[str, Any]]) -> str:
    """The non-streamed reply: names the last user message so a test can tie answer to request."""
    last = ""
    for message in messages or []:
        if message.get("role") == "user":
            content = message.get("content")
            last = content if isinstance(content, str) else json.dumps(content)
    return f"fake reply to: {last}"


def prompt_tokens_for(messages: list[dict[str, Any]]) -> int:
    """A deterministic prompt token count: one per whitespace-separated word, plus 3 per message."""
    total = 0
    for message in messages or []:
        content = message.get("content")
        text = content if isinstance(content, str) else json.dumps(content)
        total += 3 + len(text.split())
    return total


def embedding_vector(text: str, dimensions: int) -> list[float]:
    """A deterministic vector for `text` whose values are exact in float32."""
    seed = sum(text.encode("utf-8")) % 97
    return [((seed + i) % 17) / 16.0 for i in range(dimensions)]


@dataclass
class RecordedRequest:
    method: str
    path: str
    authorization: str | None
    headers: dict[str, str]
    body: Any
    raw_body: bytes
    received_at: float


@dataclass
class ScriptedReply:
    """The answer to a chat whose last user message is its trigger: the streamed pieces (joined for a plain
    answer) and the seconds between streamed events (None: the upstream's `stream_delay`)."""

    pieces: list[str]
    delay: float | None = None


@dataclass
class StreamTrace:
    """When the upstream wrote each event of one streamed answer (time.monotonic())."""

    event_sent_at: list[float] = field(default_factory=list)
    done_sent_at: float | None = None


# What a troubled key's chat completions answer (`FakeUpstream(key_failures={key: kind})`); its model list
# still answers, as OpenAI's does for a key out of credit or over its rate limit.
KEY_FAILURES = {
    "rate_limited": (429, "Rate limit reached for requests", "rate_limit_exceeded", "requests", {"retry-after": "900"}),
    "no_quota": (429, "You exceeded your current quota", "insufficient_quota", "insufficient_quota", {}),
    "server_error": (500, "The server had an error while processing your request", "server_error", "server_error", {}),
}
RATE_LIMIT_REQUESTS = 5000
RATE_LIMIT_TOKENS = 2_000_000


class FakeUpstream:
    def __init__(
        self,
        stream_delay: float = 0.2,
        valid_keys: set[str] | None = None,
        key_failures: dict[str, str] | None = None,
        reply_delay: tuple[float, float] | None = None,
        rate_limit_headers: bool = False,
        models: list[str] | None = None,
        reply_for: Callable[[list[dict[str, Any]]], str] | None = None,
    ) -> None:
        self.stream_delay = stream_delay
        # When set, any other Authorization is refused with 401 (code `fake_upstream_unknown_key`).
        self.valid_keys = set(valid_keys) if valid_keys else None
        # Keys whose chat completions fail as in KEY_FAILURES (the screenshots want every key state).
        self.key_failures = dict(key_failures or {})
        for kind in self.key_failures.values():
            assert kind in KEY_FAILURES, f"unknown key failure {kind!r}"
        # (min, max) seconds a non-streamed answer takes, drawn at random; None answers at once.
        self.reply_delay = reply_delay
        self._random = random.Random(6)
        # x-ratelimit-* headers on chat answers, counting down per key, as OpenAI sends them.
        self.rate_limit_headers = rate_limit_headers
        self._used: dict[str, tuple[int, int]] = {}
        # What GET /models lists (default MODELS) and, when set, the chat answer's text for the messages.
        self.models = list(models or MODELS)
        self.reply_for = reply_for
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._traces: list[StreamTrace] = []
        self._scripts: dict[str, ScriptedReply] = {}
        # Each key is its own account for files, batches and stored responses (fake_accounts.py).
        self.accounts = Accounts()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> "FakeUpstream":
        upstream = self

        class Handler(_Handler):
            fake = upstream

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="fake-upstream", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripted answers ------------------------------------------------------------------------------

    def script(self, trigger: str, pieces: list[str], delay: float | None = None) -> None:
        """Answers chats whose last user message is exactly `trigger` with `pieces` (every other chat keeps
        the default answer), streamed `delay` seconds apart."""
        with self._lock:
            self._scripts[trigger] = ScriptedReply(list(pieces), delay)

    def scripted(self, messages: list[dict[str, Any]]) -> ScriptedReply | None:
        users = [m.get("content") for m in messages or [] if isinstance(m, dict) and m.get("role") == "user"]
        if not users or not isinstance(users[-1], str):
            return None
        with self._lock:
            return self._scripts.get(users[-1])

    # -- recording ---------------------------------------------------------------------------------------

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def add_trace(self) -> StreamTrace:
        trace = StreamTrace()
        with self._lock:
            self._traces.append(trace)
        return trace

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def mark(self) -> int:
        """A position in the request log; pass it to `requests_since`."""
        with self._lock:
            return len(self._requests)

    def requests_since(self, mark: int) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests[mark:])

    def delay(self) -> float:
        """Seconds the next non-streamed answer waits (reply_delay)."""
        if self.reply_delay is None:
            return 0.0
        with self._lock:
            return self._random.uniform(*self.reply_delay)

    def spend(self, key: str | None, tokens: int) -> dict[str, str]:
        """The x-ratelimit-* headers after one more request of `tokens` tokens on `key` (rate_limit_headers)."""
        if not self.rate_limit_headers or key is None:
            return {}
        with self._lock:
            requests, used_tokens = self._used.get(key, (0, 0))
            requests, used_tokens = requests + 1, used_tokens + tokens
            self._used[key] = (requests, used_tokens)
        return {
            "x-ratelimit-limit-requests": str(RATE_LIMIT_REQUESTS),
            "x-ratelimit-remaining-requests": str(max(0, RATE_LIMIT_REQUESTS - requests)),
            "x-ratelimit-reset-requests": "8m30s",
            "x-ratelimit-limit-tokens": str(RATE_LIMIT_TOKENS),
            "x-ratelimit-remaining-tokens": str(max(0, RATE_LIMIT_TOKENS - used_tokens)),
            "x-ratelimit-reset-tokens": "6m0s",
        }

    def trace_mark(self) -> int:
        with self._lock:
            return len(self._traces)

    def traces_since(self, mark: int) -> list[StreamTrace]:
        with self._lock:
            return list(self._traces[mark:])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body are separate writes; without TCP_NODELAY, Nagle + delayed ACK add ~40 ms per answer.
    disable_nagle_algorithm = True
    fake: FakeUpstream  # set by FakeUpstream.start

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # -- plumbing ----------------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            data = b""
            while True:
                size_line = self.rfile.readline().strip()
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    # trailers until blank line
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_json(self, status: int, payload: Any, extra_headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", f"req_fake_{int(time.time() * 1000)}")
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _send_error_json(self, status: int, message: str, code: str, type_: str = "invalid_request_error") -> None:
        self._send_json(status, {"error": {"message": message, "type": type_, "param": None, "code": code}})

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode("ascii") + data + b"\r\n")
        self.wfile.flush()

    def _handle(self, method: str) -> None:
        raw = self._read_body() if method in ("POST", "PUT", "PATCH") or self.headers.get("Content-Length") else b""
        body: Any = None
        if raw and "multipart/" not in (self.headers.get("Content-Type") or ""):
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        path = self.path.split("?", 1)[0]
        authorization = self.headers.get("Authorization")
        self.fake.record(
            RecordedRequest(
                method=method,
                path=path,
                authorization=authorization,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                raw_body=raw,
                received_at=time.monotonic(),
            )
        )

        key = authorization[len("Bearer "):] if authorization and authorization.startswith("Bearer ") else None
        valid = self.fake.valid_keys
        if valid is not None:
            if key not in valid:
                self._send_error_json(401, "fake upstream: unknown upstream key", "fake_upstream_unknown_key")
                return

        if method == "POST" and path == "/v1/chat/completions" and key in self.fake.key_failures:
            status, message, code, type_, headers = KEY_FAILURES[self.fake.key_failures[key]]
            error = {"error": {"message": f"fake upstream: {message}", "type": type_, "param": None, "code": code}}
            self._send_json(status, error, headers)
        elif method == "POST" and path == "/v1/chat/completions":
            self._chat(body or {}, key)
        elif method == "POST" and path == "/v1/embeddings":
            self._embeddings(body or {})
        elif method == "GET" and path == "/v1/models":
            self._models()
        elif self.fake.accounts.handles(path):
            self._account_answer(
                self.fake.accounts.answer(key, method, path, {k.lower(): v for k, v in self.headers.items()}, raw)
            )
        else:
            self._send_error_json(404, f"fake upstream: no route {method} {path}", "unknown_url")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # -- endpoints ---------------------------------------------------------------------------------------

    def _chat(self, body: dict[str, Any], key: str | None = None) -> None:
        model = body.get("model", "gpt-e2e-mini")
        messages = body.get("messages") or []
        created = 1_700_000_000
        if body.get("stream"):
            self._chat_stream(model, messages, created, bool((body.get("stream_options") or {}).get("include_usage")))
            return
        script = self.fake.scripted(messages)
        if script:
            text = "".join(script.pieces)
        else:
            text = self.fake.reply_for(messages) if self.fake.reply_for else chat_reply(messages)
        prompt = prompt_tokens_for(messages)
        completion = len(text.split())
        delay = self.fake.delay()
        if delay:
            time.sleep(delay)
        self._send_json(
            200,
            {
                "id": "chatcmpl-fake-1",
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
            },
            self.fake.spend(key, prompt + completion),
        )

    def _chat_stream(self, model: str, messages: list[dict[str, Any]], created: int, include_usage: bool) -> None:
        trace = self.fake.add_trace()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            event: dict[str, Any] = {
                "id": "chatcmpl-fake-stream",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            if include_usage:
                event["usage"] = None
            return event

        def send_event(payload: Any) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            self._write_chunk(f"data: {data}\n\n".encode("utf-8"))

        script = self.fake.scripted(messages)
        pieces = script.pieces if script else STREAM_PIECES
        delay = script.delay if script and script.delay is not None else self.fake.stream_delay
        if self.fake.reply_for and not script:
            text = self.fake.reply_for(messages)
            words = text.split(" ")
            pieces = [word if i == 0 else " " + word for i, word in enumerate(words)]
            if len(pieces) == 1:  # Chinese has no spaces: a few characters per event, as models send it
                pieces = [text[i : i + 3] for i in range(0, len(text), 3)]
        events = [chunk({"role": "assistant", "content": ""}, None)]
        events += [chunk({"content": piece}, None) for piece in pieces]
        events.append(chunk({}, "stop"))
        for index, event in enumerate(events):
            if index > 0:
                time.sleep(delay)
            try:
                send_event(event)
            except (BrokenPipeError, ConnectionResetError):
                return  # the client went away (a stopped chat): nothing more to send
            trace.event_sent_at.append(time.monotonic())
        if include_usage:
            prompt = prompt_tokens_for(messages)
            completion = len(pieces)
            send_event(
                {
                    "id": "chatcmpl-fake-stream",
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": prompt,
                        "completion_tokens": completion,
                        "total_tokens": prompt + completion,
                    },
                }
            )
            trace.event_sent_at.append(time.monotonic())
        send_event("[DONE]")
        trace.done_sent_at = time.monotonic()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _account_answer(self, answer: Any) -> None:
        """Sends what the key's account answered (fake_accounts.Answer): JSON, raw bytes or an event stream."""
        if answer.events is not None:
            self.send_response(answer.status)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for event in answer.events:
                self._write_chunk(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode("utf-8"))
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        elif answer.raw is not None:
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(answer.raw)))
            self.end_headers()
            self.wfile.write(answer.raw)
            self.wfile.flush()
        else:
            self._send_json(answer.status, answer.payload)

    def _embeddings(self, body: dict[str, Any]) -> None:
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs:
            self._send_error_json(400, "fake upstream: input is required", "invalid_input")
            return
        texts = [item if isinstance(item, str) else json.dumps(item) for item in inputs]
        dimensions = int(body.get("dimensions") or EMBEDDING_DIMENSIONS)
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(texts):
            vector = embedding_vector(text, dimensions)
            if as_base64:
                encoded: Any = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
            else:
                encoded = vector
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(len(text.split()) for text in texts)
        self._send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": body.get("model", "text-embedding-e2e"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    def _models(self) -> None:
        self._send_json(
            200,
            {
                "object": "list",
                "data": [
                    {"id": model, "object": "model", "created": 1_700_000_000 + i, "owned_by": "e2e-fake"}
                    for i, model in enumerate(self.fake.models)
                ],
            },
        )
