"""WebSockets through the pool with a real client (Python `websockets`) against the real proxy: the Realtime
API and the Responses API's WebSocket mode relay both ways with a pool key swapped in (the fake upstream
checks it), the client token never goes upstream, a wrong token is refused before the upgrade, a refused key
fails over, each response leaves a usage row, and idle sockets and a drain close with 1001."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
import urllib.error
import urllib.request
from typing import Any, Iterator

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from conftest import UPSTREAM_KEYS, ProxyService, launch, shut_down
from fake_realtime import USAGE, FakeRealtime
from service_traffic import AdminClient

POOL = {f"Bearer {key}" for key in UPSTREAM_KEYS}
WAIT = 15


@pytest.fixture(scope="module")
def realtime() -> Iterator[FakeRealtime]:
    upstream = FakeRealtime(valid_keys=set(UPSTREAM_KEYS)).start()
    yield upstream
    upstream.stop()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, realtime: FakeRealtime) -> Iterator[ProxyService]:
    service = launch(tmp_path_factory.mktemp("websockets"), realtime.base_url, "data")
    yield service
    shut_down(service)


def ws_url(service: ProxyService, path: str) -> str:
    return service.base_url.replace("http://", "ws://").removesuffix("/v1") + path


def open_socket(service: ProxyService, path: str, token: str | None = None, **options: Any) -> ClientConnection:
    headers = {"Authorization": f"Bearer {token or service.client_token}"}
    return connect(ws_url(service, path), additional_headers=headers, open_timeout=WAIT, **options)


def receive(socket: ClientConnection) -> dict[str, Any]:
    return json.loads(socket.recv(timeout=WAIT))


def usage_rows(service: ProxyService, path: str, count: int, model: str | None = None) -> list[dict[str, Any]]:
    """The newest usage rows of `path` (and `model`), once the collector wrote `count` of them (bounded wait)."""
    admin = AdminClient(service.admin_url, service.admin_token)

    def rows(client: AdminClient) -> list[dict[str, Any]] | None:
        found = [
            row
            for row in client.get("/api/usage?limit=500")["data"]
            if row["path"] == path and (model is None or row["model"] == model)
        ]
        return found if len(found) >= count else None

    return admin.wait(f"{count} usage rows of {path}", rows, timeout=WAIT)


def known_token(service: ProxyService, token: str) -> None:
    """Waits until every worker knows a token just created (each sees it within about a second): each of a
    few sockets in a row is accepted, whichever worker it lands on."""
    deadline = time.monotonic() + WAIT
    accepted = 0
    while accepted < 8:
        try:
            with open_socket(service, "/v1/responses", token=token):
                accepted += 1
        except InvalidStatus as refused:
            assert refused.response.status_code == 401, refused.response.status_code
            assert time.monotonic() < deadline, "a new token was not known within 15 s"
            accepted = 0
            time.sleep(0.2)


def closed_on_both_sides(socket: ClientConnection, upstream: FakeRealtime, code: int) -> None:
    """Reads `socket` until it closes; the client and the upstream's newest socket both got `code`."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            socket.recv(timeout=WAIT)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == code
    assert upstream.sockets[-1].closed.wait(WAIT)
    assert upstream.sockets[-1].close_code == code


def newest_socket(upstream: FakeRealtime, before: int) -> Any:
    deadline = time.monotonic() + WAIT
    while len(upstream.sockets) <= before:
        assert time.monotonic() < deadline, "the upstream saw no socket"
        time.sleep(0.02)
    return upstream.sockets[-1]


def test_realtime_relays_both_ways_on_a_pool_key_and_records_each_response(
    service: ProxyService, realtime: FakeRealtime
) -> None:
    before = len(realtime.sockets)
    with open_socket(service, "/v1/realtime?model=gpt-realtime-e2e", subprotocols=["realtime"]) as socket:
        assert socket.subprotocol == "realtime"
        assert receive(socket) == {"type": "session.created", "session": {"model": "gpt-realtime-e2e"}}
        upstream = newest_socket(realtime, before)
        assert upstream.authorization in POOL
        assert upstream.query == {"model": ["gpt-realtime-e2e"]}
        assert upstream.protocols == "realtime"

        socket.send("hello upstream")
        assert receive(socket) == {"type": "echo", "data": "hello upstream"}
        # Large enough to span many TCP reads, so frames are relayed as they come.
        big = "x" * 300_000
        socket.send(big)
        assert receive(socket) == {"type": "echo", "data": big}
        # A ping crosses to the upstream and its pong comes back.
        assert socket.ping().wait(WAIT)

        for _ in range(2):
            socket.send(json.dumps({"type": "response.create", "response": {}}))
            assert receive(socket)["type"] == "response.created"
            done = receive(socket)
            assert done["type"] == "response.done"
            assert done["response"]["usage"] == USAGE
    assert upstream.closed.wait(WAIT)
    assert upstream.close_code == 1000
    assert upstream.received[:2] == ["hello upstream", big]

    rows = usage_rows(service, "/v1/realtime", 2)[:2]
    ids = sorted(row["request_id"] for row in rows)
    assert ids[0].endswith("-1") and ids[1].endswith("-2"), ids
    assert ids[0][:-2] == ids[1][:-2], ids
    for row in rows:
        assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (5, 7, 12)
        # Realtime's details: cached and audio input, audio output (the cached split is not audio input).
        assert (row["cached_tokens"], row["audio_input_tokens"], row["audio_output_tokens"]) == (2, 4, 6)
        assert row["reasoning_tokens"] is None
        assert row["model"] == "gpt-realtime-e2e"
        assert row["status"] == 200
        assert row["key_id"] is not None and row["token_id"] is not None


def test_browser_subprotocol_token_authenticates_and_is_not_forwarded(
    service: ProxyService, realtime: FakeRealtime
) -> None:
    before = len(realtime.sockets)
    token_protocol = f"openai-insecure-api-key.{service.client_token}"
    with connect(
        ws_url(service, "/v1/realtime?model=gpt-realtime-e2e"),
        subprotocols=["realtime", token_protocol],
        open_timeout=WAIT,
    ) as socket:
        assert socket.subprotocol == "realtime"
        assert receive(socket)["type"] == "session.created"
        upstream = newest_socket(realtime, before)
        assert upstream.authorization in POOL
        assert service.client_token not in upstream.protocols
        assert upstream.protocols == "realtime"


def test_responses_websocket_mode_records_one_row_per_response(service: ProxyService, realtime: FakeRealtime) -> None:
    before = len(realtime.sockets)
    with open_socket(service, "/v1/responses") as socket:
        for model in ("gpt-ws-a", "gpt-ws-b"):
            socket.send(json.dumps({"type": "response.create", "model": model, "input": "hi"}))
            assert receive(socket)["type"] == "response.created"
            assert receive(socket)["type"] == "response.completed"
    upstream = newest_socket(realtime, before)
    assert upstream.path == "/v1/responses"
    assert upstream.authorization in POOL
    rows = usage_rows(service, "/v1/responses", 2)[:2]
    assert sorted(row["model"] for row in rows) == ["gpt-ws-a", "gpt-ws-b"]
    assert sorted(row["request_id"][-2:] for row in rows) == ["-1", "-2"]
    assert all(row["total_tokens"] == 12 for row in rows)
    for row in rows:
        assert (row["cached_tokens"], row["reasoning_tokens"]) == (3, 4), row
        assert row["audio_input_tokens"] is None and row["audio_output_tokens"] is None, row


def test_a_response_created_over_a_responses_socket_belongs_to_its_key_and_token(
    service: ProxyService, realtime: FakeRealtime
) -> None:
    before = len(realtime.sockets)
    with open_socket(service, "/v1/responses") as socket:
        socket.send(json.dumps({"type": "response.create", "model": "gpt-ws-obj", "input": "hi"}))
        created = receive(socket)
        assert created["type"] == "response.created"
        assert receive(socket)["type"] == "response.completed"
    response_id = created["response"]["id"]
    upstream = newest_socket(realtime, before)
    index = [f"Bearer {key}" for key in UPSTREAM_KEYS].index(upstream.authorization)
    admin = AdminClient(service.admin_url, service.admin_token)
    key_id = next(key["id"] for key in admin.get("/api/keys") if key["name"] == f"e2e-key-{index}")

    def recorded(_: AdminClient) -> tuple[int, int] | None:
        with sqlite3.connect(service.data_dir / "openai_proxy.db") as database:
            return database.execute(
                "SELECT key_id, token_id FROM objects WHERE object_id = ? AND kind = 'response'", (response_id,)
            ).fetchone()

    key, token = admin.wait("the socket's response recorded", recorded, timeout=WAIT)
    assert key == key_id
    assert token == next(t["id"] for t in admin.get("/api/tokens") if t["name"] == "e2e-client")
    # Another client token naming it gets OpenAI's answer for an unknown response (the fake upstream speaks
    # only WebSocket: an answer from it would not be this JSON).
    other = admin.post("/api/tokens", {"name": "ws-object-other"})["token"]

    def answered(_: AdminClient) -> tuple[int, dict[str, Any]] | None:
        request = urllib.request.Request(
            f"{service.base_url}/responses/{response_id}", headers={"Authorization": f"Bearer {other}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=WAIT):
                return None
        except urllib.error.HTTPError as error:
            body = error.read()
            # Until every worker knows the new token (401) and the recorded object (else the request goes
            # upstream, whose 404 says "not here"), ask again: both reach every worker within about a second.
            answer = json.loads(body) if error.code == 404 else None
            return None if answer is None or answer["error"]["message"] == "not here" else (error.code, answer)

    status, body = admin.wait("the other token's 404", answered, timeout=WAIT)
    assert status == 404
    assert body["error"]["message"] == f"Response with id '{response_id}' not found."


def test_a_socket_refuses_a_response_create_naming_another_tokens_object_or_another_keys(
    service: ProxyService, realtime: FakeRealtime
) -> None:
    admin = AdminClient(service.admin_url, service.admin_token)
    before = len(realtime.sockets)
    with open_socket(service, "/v1/responses") as socket:
        socket.send(json.dumps({"type": "response.create", "model": "gpt-ws-obj", "input": "first"}))
        response_id = receive(socket)["response"]["id"]
        assert receive(socket)["type"] == "response.completed"
    holder = newest_socket(realtime, before).authorization

    def recorded(_: AdminClient) -> bool | None:
        with sqlite3.connect(service.data_dir / "openai_proxy.db") as database:
            found = database.execute("SELECT 1 FROM objects WHERE object_id = ?", (response_id,)).fetchone()
        return True if found else None

    admin.wait("the socket's response recorded", recorded, timeout=WAIT)
    follow_up = json.dumps({"type": "response.create", "model": "gpt-ws-obj", "previous_response_id": response_id})

    # Each worker reads the record within about a second of its row: until the socket's worker has, the
    # message passes (and the fake answers it); once it has, the stranger's message never goes upstream.
    other = admin.post("/api/tokens", {"name": "ws-object-stranger"})["token"]
    known_token(service, other)

    def refused(_: AdminClient) -> tuple[dict[str, Any], Any] | None:
        before = len(realtime.sockets)
        with open_socket(service, "/v1/responses", token=other) as socket:
            socket.send(follow_up)
            event = receive(socket)
        return (event, newest_socket(realtime, before)) if event["type"] == "error" else None

    error, upstream = admin.wait("the stranger refused", refused, timeout=WAIT)
    assert error["error"]["message"] == f"Response with id '{response_id}' not found."
    assert follow_up not in upstream.received

    # The owner's sockets rotate over the pool: one on another key is told why, one on the holder's passes.
    outcomes: dict[bool, dict[str, Any]] = {}
    deadline = time.monotonic() + WAIT
    while len(outcomes) < 2 or outcomes[False]["type"] != "error":
        assert time.monotonic() < deadline, f"no refusal on another key within {WAIT} s: {outcomes}"
        before = len(realtime.sockets)
        with open_socket(service, "/v1/responses") as socket:
            upstream = newest_socket(realtime, before)
            socket.send(follow_up)
            outcomes[upstream.authorization == holder] = receive(socket)
    assert outcomes[True]["type"] == "response.created"
    assert outcomes[False]["type"] == "error"
    assert outcomes[False]["error"]["code"] == "object_on_other_key"
    assert response_id in outcomes[False]["error"]["message"]


@pytest.mark.parametrize("token", ["not-a-proxy-token", None])
def test_a_wrong_or_missing_token_is_refused_before_the_upgrade(
    service: ProxyService, realtime: FakeRealtime, token: str | None
) -> None:
    before = len(realtime.sockets), len(realtime.refused)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(service, "/v1/realtime?model=gpt-realtime-e2e"), additional_headers=headers, open_timeout=WAIT)
    response = refused.value.response
    assert response.status_code == 401
    assert json.loads(response.body)["error"]["code"] == "invalid_api_key"
    # Nothing reached the upstream.
    assert (len(realtime.sockets), len(realtime.refused)) == before


def test_close_codes_pass_through(service: ProxyService) -> None:
    with open_socket(service, "/v1/responses") as socket:
        socket.send("close-me")
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=WAIT)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4001, "bye")


def test_the_tokens_model_allow_list_applies_to_the_query_and_to_messages(
    service: ProxyService, realtime: FakeRealtime
) -> None:
    admin = AdminClient(service.admin_url, service.admin_token)
    # An allow-list names models the operator knows.
    for name in ("gpt-realtime-ok", "gpt-other"):
        admin.post("/api/models", {"model_name": name})
    token = admin.post("/api/tokens", {"name": "ws-limited", "allowed_models": ["gpt-realtime-ok"]})["token"]
    known_token(service, token)

    with pytest.raises(InvalidStatus) as refused:
        open_socket(service, "/v1/realtime?model=gpt-other", token=token)
    assert refused.value.response.status_code == 403
    assert json.loads(refused.value.response.body)["error"]["code"] == "model_not_allowed"

    before = len(realtime.sockets)
    with open_socket(service, "/v1/realtime?model=gpt-realtime-ok", token=token) as socket:
        assert receive(socket)["type"] == "session.created"
        upstream = newest_socket(realtime, before)
        socket.send(json.dumps({"type": "session.update", "session": {"model": "gpt-other"}}))
        error = receive(socket)
        assert error["type"] == "error" and error["error"]["code"] == "model_not_allowed"
        allowed = json.dumps({"type": "session.update", "session": {"model": "gpt-realtime-ok"}})
        socket.send(allowed)
        assert receive(socket) == {"type": "echo", "data": allowed}
    # The refused message never reached the upstream.
    assert upstream.received == [allowed]


def test_a_refusing_key_fails_over_to_another(tmp_path_factory: pytest.TempPathFactory) -> None:
    refusing = UPSTREAM_KEYS[0]
    upstream = FakeRealtime(valid_keys=set(UPSTREAM_KEYS), refusing_keys=frozenset({refusing})).start()
    service = launch(tmp_path_factory.mktemp("ws-failover"), upstream.base_url, "data")
    try:
        for _ in range(len(UPSTREAM_KEYS)):
            with open_socket(service, "/v1/realtime?model=gpt-realtime-e2e") as socket:
                assert receive(socket)["type"] == "session.created"
        # The refusing key was tried for a socket (round robin reaches every key in 3 sockets), then another.
        assert (f"Bearer {refusing}", "/v1/realtime") in upstream.refused
        assert all(socket.authorization != f"Bearer {refusing}" for socket in upstream.sockets)
        assert len(upstream.sockets) == len(UPSTREAM_KEYS)
    finally:
        shut_down(service)
        upstream.stop()


def test_every_key_refusing_gives_the_client_an_http_error(tmp_path_factory: pytest.TempPathFactory) -> None:
    upstream = FakeRealtime(valid_keys=set(UPSTREAM_KEYS), refusing_keys=frozenset(UPSTREAM_KEYS)).start()
    service = launch(tmp_path_factory.mktemp("ws-refused"), upstream.base_url, "data")
    try:
        with pytest.raises(InvalidStatus) as refused:
            open_socket(service, "/v1/realtime?model=gpt-realtime-e2e")
        # Each 429 sent its key cooling, as for a request: no key is left.
        assert refused.value.response.status_code == 503
        error = json.loads(refused.value.response.body)["error"]
        assert error["code"] == "no_available_key"
        assert upstream.sockets == []
        assert {authorization for authorization, path in upstream.refused if path == "/v1/realtime"} == POOL
    finally:
        shut_down(service)
        upstream.stop()


def test_an_idle_socket_and_a_drain_close_both_sides_with_1001(tmp_path_factory: pytest.TempPathFactory) -> None:
    upstream = FakeRealtime(valid_keys=set(UPSTREAM_KEYS)).start()
    service = launch(
        tmp_path_factory.mktemp("ws-drain"), upstream.base_url, "data",
        extra_env={"OPENAI_PROXY_WEBSOCKET_IDLE_TIMEOUT": "2s"},
    )
    try:
        # Silent for the idle timeout: closed with 1001 on both sides.
        with open_socket(service, "/v1/responses", ping_interval=None) as socket:
            closed_on_both_sides(socket, upstream, 1001)

        # Kept busy by pings, the socket outlives the drain until its deadline, then both sides get 1001.
        with open_socket(service, "/v1/responses", ping_interval=0.5) as socket:
            socket.send("before the drain")
            assert receive(socket) == {"type": "echo", "data": "before the drain"}
            service.process.send_signal(signal.SIGTERM)
            socket.send("during the drain")
            assert receive(socket) == {"type": "echo", "data": "during the drain"}
            closed_on_both_sides(socket, upstream, 1001)
        assert service.process.wait(timeout=WAIT) == 0
    finally:
        shut_down(service)
        upstream.stop()


def test_a_socket_of_a_token_with_a_quota_reserves_nothing(service: ProxyService, realtime: FakeRealtime) -> None:
    admin = AdminClient(service.admin_url, service.admin_token)
    created = admin.post("/api/tokens", {"name": "ws-quota", "token_quota": 1_000_000})
    known_token(service, created["token"])
    with open_socket(service, "/v1/responses", token=created["token"]) as socket:
        socket.send(json.dumps({"type": "response.create", "model": "gpt-ws-q", "input": "hi"}))
        assert receive(socket)["type"] == "response.created"
        assert receive(socket)["type"] == "response.completed"
        # A request's reservation is written before it goes upstream; a socket's would be there now.
        with sqlite3.connect(service.data_dir / "openai_proxy.db") as database:
            held = database.execute(
                "SELECT COUNT(*) FROM token_quota_reservations WHERE token_id = ?", (created["id"],)
            ).fetchone()[0]
        assert held == 0
    rows = usage_rows(service, "/v1/responses", 1, model="gpt-ws-q")
    assert rows[0]["total_tokens"] == 12
