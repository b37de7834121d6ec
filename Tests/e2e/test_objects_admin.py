"""The operator's side of stateful objects, through the admin API, against the fake upstream in which each key is
its own account (fake_accounts.py): a removed key's objects are reassigned to a replacement key of the same
account and their requests are served by it again; a revoked record's id is unknown again, routed as any id the
gateway never saw."""

from __future__ import annotations

import time
from typing import Callable, Iterator

import openai
import pytest

from conftest import UPSTREAM_KEYS, Gateway, launch, shut_down
from fake_upstream import FakeUpstream
from service_traffic import AdminClient
from test_objects import client_for, served_by, until_every_worker_knows


@pytest.fixture(scope="module")
def admin_objects_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    # Its own upstream and service: the test removes and re-adds a key.
    upstream = FakeUpstream(valid_keys=set(UPSTREAM_KEYS)).start()
    service = launch(tmp_path_factory.mktemp("objects-admin"), upstream.base_url, "data")
    yield Gateway(service=service, upstream=upstream)
    shut_down(service)
    upstream.stop()


def on_every_worker(gateway: Gateway, token: str, check: Callable[[openai.OpenAI], bool], what: str) -> None:
    """Waits (bounded) until `check` holds 12 times in a row, each on a new connection (so on every worker)."""
    deadline = time.monotonic() + 20
    streak = 0
    while streak < 12:
        with client_for(gateway, token) as fresh:
            streak = streak + 1 if check(fresh) else 0
        assert time.monotonic() < deadline, f"not every worker {what} after 20 s"


def test_reassign_moves_a_removed_keys_objects_and_revoke_forgets_them(admin_objects_gateway: Gateway) -> None:
    gateway = admin_objects_gateway
    admin = AdminClient(gateway.admin_url, gateway.admin_token)
    mark = gateway.upstream.mark()
    with client_for(gateway, gateway.token) as client:
        uploaded = client.files.create(file=("data.jsonl", b'{"a":1}\n'), purpose="batch")
    holder = served_by(gateway, mark, "/v1/files")
    assert len(holder) == 1, holder
    value = next(iter(holder)).removeprefix("Bearer ")
    old_id = next(key["id"] for key in admin.get("/api/keys") if key["name"] == f"e2e-key-{UPSTREAM_KEYS.index(value)}")
    until_every_worker_knows(gateway, gateway.token, lambda c: c.files.retrieve(uploaded.id))

    # The key is removed: its file's requests get the 409 on every worker; the admin API lists the record under
    # a removed key.
    admin.call("DELETE", f"/api/keys/{old_id}")

    def refused_as_removed(c: openai.OpenAI) -> bool:
        try:
            c.files.retrieve(uploaded.id)
        except openai.ConflictError as conflict:
            return isinstance(conflict.body, dict) and conflict.body.get("code") == "object_key_removed"
        return False

    on_every_worker(gateway, gateway.token, refused_as_removed, "refused the removed key's file")
    listed = admin.get(f"/api/objects?key_id={old_id}")
    assert [(o["object_id"], o["key_name"], o["key_removed"]) for o in listed["data"]] == [(uploaded.id, None, True)]

    # The same account's key comes back as a new key; reassigning moves the record to it, and every worker
    # sends the file's requests there.
    new_id = admin.post("/api/keys", {"name": "replacement", "key_value": value})["id"]
    moved = admin.post("/api/objects/reassign", {"from_key_id": old_id, "to_key_id": new_id})
    assert moved == {"moved": 1, "from_key_id": old_id, "to_key_id": new_id}

    def served(c: openai.OpenAI) -> bool:
        try:
            return c.files.retrieve(uploaded.id).id == uploaded.id
        except openai.APIStatusError:
            return False

    on_every_worker(gateway, gateway.token, served, "served the reassigned file")
    mark = gateway.upstream.mark()
    with client_for(gateway, gateway.token) as client:
        for _ in range(6):
            assert client.files.retrieve(uploaded.id).id == uploaded.id
    assert served_by(gateway, mark, f"/v1/files/{uploaded.id}") == {f"Bearer {value}"}
    summary = admin.get("/api/objects/summary")
    assert [(k["key_id"], k["count"]) for k in summary["keys"]] == [(new_id, 1)]

    # Revoked, the id is unknown again: another token's request for it is no longer answered 404 by the gateway
    # but goes upstream, as an id the gateway never saw.
    stranger = admin.post("/api/tokens", {"name": "objects-admin-other"})["token"]
    until_every_worker_knows(gateway, stranger, lambda c: c.models.list())
    assert admin.call("DELETE", f"/api/objects/{uploaded.id}") == {"result": "revoked", "id": uploaded.id}

    def reaches_upstream(c: openai.OpenAI) -> bool:
        before = gateway.upstream.mark()
        try:
            c.files.retrieve(uploaded.id)
        except openai.APIStatusError:
            pass
        return any(uploaded.id in r.path for r in gateway.upstream.requests_since(before))

    on_every_worker(gateway, stranger, reaches_upstream, "forgot the revoked record")
    assert admin.get("/api/objects")["total"] == 0
    actions = [entry["action"] for entry in admin.get("/api/audit?limit=10")["data"]]
    assert actions[:1] == ["object.revoke"] and "object.reassign" in actions
