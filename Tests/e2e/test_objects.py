"""Stateful objects through a pool of keys from different accounts, with the official `openai` client: the fake
upstream makes each key its own account (fake_accounts.py), so an object is found only under the key that
created it. Through the gateway, an object's requests follow its key, only its client token may name it, and
a removed key's objects get a 409 that says so."""

from __future__ import annotations

import time
from typing import Callable, Iterator

import openai
import pytest

from conftest import UPSTREAM_KEYS, Gateway, launch, shut_down
from fake_upstream import FakeUpstream
from service_traffic import AdminClient

BATCH_LINE = b'{"custom_id":"1","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-e2e-mini"}}\n'


@pytest.fixture(scope="module")
def objects_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    # Its own upstream and service: the test removes a key, which the other modules must not see.
    upstream = FakeUpstream(valid_keys=set(UPSTREAM_KEYS)).start()
    service = launch(tmp_path_factory.mktemp("objects"), upstream.base_url, "data")
    yield Gateway(service=service, upstream=upstream)
    shut_down(service)
    upstream.stop()


def client_for(gateway: Gateway, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=token, max_retries=0, timeout=30)


def until_every_worker_knows(gateway: Gateway, token: str, probe: Callable[[openai.OpenAI], object]) -> None:
    """Waits (bounded) until `probe` succeeds 12 times in a row, each on a new connection: whichever worker
    accepts it then knows the object or token (an object's creator at once, the others once they read the
    database)."""
    deadline = time.monotonic() + 20
    streak = 0
    while streak < 12:
        with client_for(gateway, token) as fresh:
            try:
                probe(fresh)
                streak += 1
            except openai.APIStatusError:
                streak = 0
        assert time.monotonic() < deadline, "a worker still routed the object to another key after 20 s"


def served_by(gateway: Gateway, mark: int, path_part: str) -> set[str | None]:
    return {r.authorization for r in gateway.upstream.requests_since(mark) if path_part in r.path}


def test_objects_follow_their_key_and_belong_to_their_token(objects_gateway: Gateway) -> None:
    gateway = objects_gateway
    admin = AdminClient(gateway.admin_url, gateway.admin_token)
    with client_for(gateway, gateway.token) as client:
        # upload → retrieve ×N → content → batch on it: every step finds the file, whichever key the upload got.
        mark = gateway.upstream.mark()
        uploaded = client.files.create(file=("batch.jsonl", BATCH_LINE), purpose="batch")
        for _ in range(6):
            assert client.files.retrieve(uploaded.id).bytes == len(BATCH_LINE)
        assert client.files.content(uploaded.id).content == BATCH_LINE
        batch = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        assert client.batches.retrieve(batch.id).input_file_id == uploaded.id
        holder = served_by(gateway, mark, "/v1/files")
        assert len(holder) == 1, holder
        assert served_by(gateway, mark, "/v1/batches") == holder

        # A previous_response_id chain of 10 steps, one of them streamed: every step finds the one before.
        previous = None
        chain: list[str] = []
        for step in range(1, 11):
            if step == 5:
                stream = client.responses.create(
                    model="gpt-e2e-mini", input=f"step {step}", previous_response_id=previous, stream=True
                )
                response = next(event.response for event in stream if event.type == "response.completed")
                stream.close()
                # Closing a stream before its end closes its connection: the next step comes on a new one,
                # maybe to another worker, which learns the response within about a second (README).
                until_every_worker_knows(gateway, gateway.token, lambda c, r=response.id: c.responses.retrieve(r))
            else:
                response = client.responses.create(
                    model="gpt-e2e-mini", input=f"step {step}", previous_response_id=previous
                )
            assert response.output_text == f"step {step}"
            previous = response.id
            chain.append(response.id)
        assert client.responses.retrieve(chain[-1]).id == chain[-1]

    until_every_worker_knows(gateway, gateway.token, lambda c: c.files.retrieve(uploaded.id))
    until_every_worker_knows(gateway, gateway.token, lambda c: c.responses.retrieve(chain[4]))

    # A second client token gets OpenAI's 404 for each of them, as if they did not exist.
    other = admin.post("/api/tokens", {"name": "objects-other"})["token"]
    until_every_worker_knows(gateway, other, lambda c: c.models.list())
    mark = gateway.upstream.mark()
    with client_for(gateway, other) as stranger:
        attempts: list[Callable[[], object]] = [
            lambda: stranger.files.retrieve(uploaded.id),
            lambda: stranger.files.content(uploaded.id),
            lambda: stranger.files.delete(uploaded.id),
            lambda: stranger.batches.retrieve(batch.id),
            lambda: stranger.batches.cancel(batch.id),
            lambda: stranger.responses.retrieve(chain[4]),
            lambda: stranger.responses.create(model="gpt-e2e-mini", input="x", previous_response_id=chain[-1]),
            lambda: stranger.batches.create(
                input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
            ),
        ]
        for attempt in attempts:
            with pytest.raises(openai.NotFoundError) as refused:
                attempt()
            error = refused.value.body
            assert isinstance(error, dict) and error.get("type") == "invalid_request_error", error
        with pytest.raises(openai.NotFoundError) as file_error:
            stranger.files.retrieve(uploaded.id)
        assert file_error.value.body["message"] == f"No such File object: {uploaded.id}"
    # None of those reached an upstream key.
    assert gateway.upstream.requests_since(mark) == []

    with client_for(gateway, gateway.token) as client:
        # The owner deletes the file on its key; the object is gone everywhere.
        assert client.files.delete(uploaded.id).deleted
        with pytest.raises(openai.NotFoundError):
            client.files.retrieve(uploaded.id)

        # The key that holds the batch is removed: its objects' requests get the 409 naming the reason.
        index = [f"Bearer {key}" for key in UPSTREAM_KEYS].index(next(iter(holder)))
        key_id = next(key["id"] for key in admin.get("/api/keys") if key["name"] == f"e2e-key-{index}")
        admin.call("DELETE", f"/api/keys/{key_id}")
        deadline = time.monotonic() + 15
        while True:
            try:
                client.batches.retrieve(batch.id)
            except openai.ConflictError as conflict:
                body = conflict.body
                assert isinstance(body, dict), body
                assert body["code"] == "object_key_removed", body
                assert "the key that holds this object was removed" in body["message"], body
                break
            assert time.monotonic() < deadline, "requests for a removed key's batch were still served after 15 s"
            time.sleep(0.2)
