"""Talking to a running service from scripts: the admin API with the admin token, and client traffic
through the proxy port. Used by scripts/screenshots.py and bench/console_paint.py to fill a service with
data the way real use does (keys through the API, requests through the proxy, rows through the collector).
"""

from __future__ import annotations

import http.client
import json
import queue
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


class AdminClient:
    """The admin API as a script uses it: `Authorization: Bearer <admin token>`, JSON in and out."""

    def __init__(self, admin_url: str, admin_token: str) -> None:
        self.admin_url = admin_url
        self.admin_token = admin_token

    def call(self, method: str, path: str, body: Any = None, timeout: float = 60, raw: bool = False) -> Any:
        """The answer's JSON (None when empty), or its bytes when `raw` (an event stream)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.admin_url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.admin_token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                answer = response.read()
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{method} {path} answered {error.code}: {error.read()[:500]!r}") from None
        if raw:
            return answer
        return json.loads(answer) if answer else None

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, {} if body is None else body)

    def put(self, path: str, body: Any) -> Any:
        return self.call("PUT", path, body)

    def wait(self, what: str, predicate: Any, timeout: float = 60, interval: float = 0.25) -> Any:
        """Polls `predicate(self)` until truthy (returned); raises after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self)
            if value:
                return value
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(interval)

    def request_log_count(self) -> int:
        """Rows in the request log (all time), as the stats overview counts them."""
        overview = self.get("/api/stats/overview")
        return int(overview["all_time"]["requests"])


@dataclass
class ProxyRequest:
    """One client request for `send_requests`."""

    token: str
    path: str
    body: dict[str, Any]


def send_requests(base_url: str, requests: list[ProxyRequest], concurrency: int = 16) -> dict[int, int]:
    """Sends every request to the proxy over `concurrency` keep-alive connections; answers' status counts.

    `base_url` is the proxy's `http://host:port/v1`; paths are relative to it (`/chat/completions`).
    """
    parts = urlsplit(base_url)
    work: queue.Queue[ProxyRequest | None] = queue.Queue()
    for item in requests:
        work.put(item)
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    failures: list[BaseException] = []

    def worker() -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        try:
            while True:
                try:
                    item = work.get_nowait()
                except queue.Empty:
                    return
                payload = json.dumps(item.body).encode()
                headers = {"Authorization": f"Bearer {item.token}", "Content-Type": "application/json"}
                for attempt in range(2):
                    try:
                        connection.request("POST", parts.path + item.path, payload, headers)
                        response = connection.getresponse()
                        response.read()
                        break
                    except (http.client.HTTPException, OSError):
                        # The server may close an idle keep-alive connection; reconnect once.
                        connection.close()
                        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
                        if attempt:
                            raise
                with lock:
                    statuses[response.status] = statuses.get(response.status, 0) + 1
        except BaseException as error:  # reported below; a lost request would skew every figure
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"{len(failures)} client connection(s) failed: {failures[0]!r}")
    return statuses


def chat_body(model: str, text: str, stream: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": text}]}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body
