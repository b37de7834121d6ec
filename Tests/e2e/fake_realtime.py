"""A fake upstream for WebSockets (the Realtime API and the Responses API's WebSocket mode), on Python's
`websockets` server in a thread of its own.

Each handshake's key must be one of `valid_keys` (else 401 before any upgrade), and a key in `refusing_keys`
gets 429, so that failover can be seen; plain HTTP requests (the admin's key checks) get 404 whatever the key. Every socket is recorded: path, query, the `Authorization` it
brought, the subprotocols offered, the messages received and the close code the proxy sent.

What it answers: a Realtime socket starts with `session.created`; `response.create` gets `response.created`
then `response.done` (Realtime) or `response.completed` (Responses, naming the model asked for), with
`usage` {5, 7, 12} and each API's details (`USAGE`, `RESPONSES_USAGE`); `close-me`
closes with code 4001; any other message is echoed as `{"type":"echo","data":…}`.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request

# As Realtime's `response.done` reports it: cached and audio input tokens, audio output tokens.
USAGE = {
    "total_tokens": 12,
    "input_tokens": 5,
    "output_tokens": 7,
    "input_token_details": {
        "text_tokens": 1,
        "audio_tokens": 4,
        "cached_tokens": 2,
        "cached_tokens_details": {"text_tokens": 1, "audio_tokens": 1},
    },
    "output_token_details": {"text_tokens": 1, "audio_tokens": 6},
}
# As the Responses API reports it: cached input tokens, reasoning output tokens.
RESPONSES_USAGE = {
    "input_tokens": 5,
    "input_tokens_details": {"cached_tokens": 3},
    "output_tokens": 7,
    "output_tokens_details": {"reasoning_tokens": 4},
    "total_tokens": 12,
}


@dataclass
class Socket:
    """One WebSocket the fake upstream accepted."""

    path: str
    query: dict[str, list[str]]
    authorization: str
    protocols: str
    received: list[str] = field(default_factory=list)
    close_code: int | None = None
    closed: threading.Event = field(default_factory=threading.Event)


class FakeRealtime:
    """The WebSocket upstream; `base_url` is what the proxy's OPENAI_API_BASE_URL is set to."""

    def __init__(self, valid_keys: set[str], refusing_keys: frozenset[str] = frozenset()) -> None:
        self.valid_keys = {f"Bearer {key}" for key in valid_keys}
        self.refusing_keys = {f"Bearer {key}" for key in refusing_keys}
        self.sockets: list[Socket] = []
        # (Authorization, path) of each handshake refused.
        self.refused: list[tuple[str, str]] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "FakeRealtime":
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _serve(self):
        return await serve(
            self._handle, "127.0.0.1", 0, process_request=self._check, ping_interval=None,
            # `realtime` when offered; no subprotocol is fine too (the Responses API's WebSocket mode asks none).
            select_subprotocol=lambda _, offered: "realtime" if "realtime" in offered else None,
        )

    def _check(self, connection: ServerConnection, request: Request):
        authorization = request.headers.get("Authorization", "")
        path = urlsplit(request.path).path
        if path not in ("/v1/realtime", "/v1/responses"):
            # The admin's key checks (`GET /v1/models`): not served here, whatever the key, so that keys stay
            # healthy (and reach every model) until a handshake shows otherwise.
            return connection.respond(HTTPStatus.NOT_FOUND, '{"error":{"message":"not here","type":"invalid_request_error","code":"not_found"}}\n')
        if authorization in self.refusing_keys:
            self.refused.append((authorization, path))
            return connection.respond(HTTPStatus.TOO_MANY_REQUESTS, '{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}\n')
        if authorization not in self.valid_keys:
            self.refused.append((authorization, path))
            return connection.respond(HTTPStatus.UNAUTHORIZED, '{"error":{"message":"Incorrect API key","type":"invalid_request_error","code":"invalid_api_key"}}\n')
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        request = connection.request
        target = urlsplit(request.path)
        socket = Socket(
            path=target.path,
            query=parse_qs(target.query),
            authorization=request.headers.get("Authorization", ""),
            protocols=", ".join(request.headers.get_all("Sec-WebSocket-Protocol")),
        )
        self.sockets.append(socket)
        realtime = target.path.endswith("/realtime")
        try:
            if realtime:
                model = socket.query.get("model", [None])[0]
                await connection.send(json.dumps({"type": "session.created", "session": {"model": model}}))
            async for message in connection:
                socket.received.append(message)
                if message == "close-me":
                    await connection.close(4001, "bye")
                    break
                event = json.loads(message) if message.startswith("{") else {}
                if event.get("type") == "response.create":
                    # The Responses API's response is a stored object: its id comes first, as OpenAI sends it.
                    created: dict[str, Any] = {"status": "in_progress"}
                    if not realtime:
                        created = {"id": f"resp_ws_{uuid.uuid4().hex}", "object": "response", **created}
                    await connection.send(json.dumps({"type": "response.created", "response": created}))
                    done = "response.done" if realtime else "response.completed"
                    response = {"status": "completed", "usage": USAGE if realtime else RESPONSES_USAGE}
                    # Realtime's responses do not name the model (the session has one); the Responses API's do.
                    if not realtime:
                        response["model"] = event.get("model")
                    await connection.send(json.dumps({"type": done, "response": response}))
                else:
                    await connection.send(json.dumps({"type": "echo", "data": message}))
        except ConnectionClosed:
            pass
        finally:
            socket.close_code = connection.close_code
            socket.closed.set()
