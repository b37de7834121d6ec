"""A fake upstream whose answers report token details as OpenAI sends them: chat completions
(`prompt_tokens_details.cached_tokens`, `completion_tokens_details.reasoning_tokens`), whole and streamed,
and the Responses API (`input_tokens_details`, `output_tokens_details`), whole and streamed, ending
`response.completed`, or `response.incomplete` when `max_output_tokens` is under `OUTPUT_TOKENS`.

The counts are fixed (below), so a test can check the exact numbers the gateway records.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PROMPT_TOKENS = 2048
CACHED_TOKENS = 1536
OUTPUT_TOKENS = 300
REASONING_TOKENS = 192
# Responses that stop at max_output_tokens report what they spent until then.
INCOMPLETE_OUTPUT_TOKENS = 16
INCOMPLETE_REASONING_TOKENS = 16


def chat_usage() -> dict[str, Any]:
    return {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": OUTPUT_TOKENS,
        "total_tokens": PROMPT_TOKENS + OUTPUT_TOKENS,
        "prompt_tokens_details": {"cached_tokens": CACHED_TOKENS, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": REASONING_TOKENS,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def responses_usage(output: int, reasoning: int) -> dict[str, Any]:
    return {
        "input_tokens": PROMPT_TOKENS,
        "input_tokens_details": {"cached_tokens": CACHED_TOKENS},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": PROMPT_TOKENS + output,
    }


class FakeAccounting:
    """The upstream; `base_url` is what the proxy's OPENAI_API_BASE_URL is set to."""

    def __init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "FakeAccounting":
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def base_url(self) -> str:
        assert self._server
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._json(404, {"error": {"message": "fake: no route", "type": "invalid_request_error", "code": None}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        path = self.path.split("?", 1)[0]
        if path == "/v1/chat/completions":
            self._chat(body)
        elif path == "/v1/responses":
            self._responses(body)
        else:
            self._json(404, {"error": {"message": "fake: no route", "type": "invalid_request_error", "code": None}})

    def _json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _events(self, events: list[tuple[str | None, Any]]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for name, payload in events:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            text = (f"event: {name}\n" if name else "") + f"data: {data}\n\n"
            encoded = text.encode()
            self.wfile.write(f"{len(encoded):x}\r\n".encode() + encoded + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _chat(self, body: dict[str, Any]) -> None:
        model = body.get("model", "o4-mini")
        base = {"id": "chatcmpl-accounting", "created": 1_741_570_283, "model": model}
        if not body.get("stream"):
            message = {"role": "assistant", "content": "Cached.", "refusal": None, "annotations": []}
            self._json(
                200,
                base
                | {
                    "object": "chat.completion",
                    "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
                    "usage": chat_usage(),
                },
            )
            return
        include = bool((body.get("stream_options") or {}).get("include_usage"))
        chunk = base | {"object": "chat.completion.chunk"}
        events: list[tuple[str | None, Any]] = [
            (None, chunk | {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Cached."}, "finish_reason": None}]}),
            (None, chunk | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        ]
        if include:
            events.append((None, chunk | {"choices": [], "usage": chat_usage()}))
        events.append((None, "[DONE]"))
        self._events(events)

    def _responses(self, body: dict[str, Any]) -> None:
        model = body.get("model", "o3")
        limit = body.get("max_output_tokens")
        incomplete = isinstance(limit, int) and limit < OUTPUT_TOKENS
        if incomplete:
            usage = responses_usage(INCOMPLETE_OUTPUT_TOKENS, INCOMPLETE_REASONING_TOKENS)
            status, end = "incomplete", "response.incomplete"
            output: list[Any] = [{"type": "reasoning", "id": "rs_1", "summary": []}]
        else:
            usage = responses_usage(OUTPUT_TOKENS, REASONING_TOKENS)
            status, end = "completed", "response.completed"
            output = [
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {
                    "type": "message",
                    "id": "msg_1",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "Cached.", "annotations": []}],
                },
            ]
        response = {
            "id": "resp_accounting",
            "object": "response",
            "created_at": 1_741_476_542,
            "status": status,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
            "model": model,
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": usage,
        }
        if not body.get("stream"):
            self._json(200, response)
            return
        started = response | {"status": "in_progress", "output": [], "usage": None, "incomplete_details": None}
        self._events(
            [
                ("response.created", {"type": "response.created", "sequence_number": 0, "response": started}),
                ("response.in_progress", {"type": "response.in_progress", "sequence_number": 1, "response": started}),
                (end, {"type": end, "sequence_number": 2, "response": response}),
            ]
        )
