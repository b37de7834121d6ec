"""List endpoints through a pool of keys from different accounts, with the official `openai` client: the fake
upstream makes each key its own account (fake_accounts.py), so one key's list would show that account's objects
of every token and miss the token's objects on the other keys. Through the gateway, `files.list()` and
`batches.list()` show exactly the token's own objects, gathered from the keys that hold them, and the client's
auto-pagination walks them all once."""

from __future__ import annotations

import time
import urllib.request
from typing import Iterator

import openai
import pytest

from conftest import UPSTREAM_KEYS, Gateway, launch, shut_down
from fake_upstream import FakeUpstream
from service_traffic import AdminClient
from test_objects import BATCH_LINE, client_for, served_by, until_every_worker_knows


@pytest.fixture(scope="module")
def lists_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    upstream = FakeUpstream(valid_keys=set(UPSTREAM_KEYS)).start()
    service = launch(tmp_path_factory.mktemp("object-lists"), upstream.base_url, "data")
    yield Gateway(service=service, upstream=upstream)
    shut_down(service)
    upstream.stop()


def stored(admin: AdminClient, kind: str, count: int) -> None:
    """Waits (bounded) until the collector stored `count` records of `kind`: lists read the records."""
    admin.wait(f"{count} {kind} records", lambda a: a.get(f"/api/objects?kind={kind}&limit=500")["total"] == count)


def test_lists_show_the_tokens_own_objects_from_every_key(lists_gateway: Gateway) -> None:
    gateway = lists_gateway
    admin = AdminClient(gateway.admin_url, gateway.admin_token)
    other = admin.post("/api/tokens", {"name": "lists-other"})["token"]
    until_every_worker_knows(gateway, other, lambda c: c.models.list())

    mark = gateway.upstream.mark()
    with client_for(gateway, gateway.token) as mine, client_for(gateway, other) as theirs:
        own = [mine.files.create(file=(f"a{i}.jsonl", BATCH_LINE), purpose="batch").id for i in range(5)]
        foreign = [theirs.files.create(file=(f"b{i}.txt", b"b"), purpose="assistants").id for i in range(4)]
    # Round-robin spread the uploads over all three keys (accounts).
    assert len(served_by(gateway, mark, "/v1/files")) == 3
    stored(admin, "file", 9)

    with client_for(gateway, gateway.token) as mine, client_for(gateway, other) as theirs:
        listed = [f.id for f in mine.files.list()]
        assert listed == own[::-1], "newest first, every one of the token's files, no other token's"
        assert [f.id for f in theirs.files.list()] == foreign[::-1]
        assert [f.id for f in mine.files.list(order="asc")] == own

        # Auto-pagination two at a time walks them all once.
        first = mine.files.list(limit=2)
        assert [f.id for f in first.data] == own[:-3:-1] and first.has_more
        assert [f.id for f in mine.files.list(limit=2)] == listed

        # A filter records cannot answer is applied to the fetched files.
        assert [f.id for f in mine.files.list(purpose="batch")] == listed
        assert [f.id for f in mine.files.list(purpose="assistants")] == []
        assert [f.id for f in theirs.files.list(purpose="assistants", limit=3)] == foreign[::-1]

        # Another token's id as a cursor shows nothing of theirs.
        assert [f.id for f in mine.files.list(after=foreign[0])] == []

        with pytest.raises(openai.BadRequestError) as refused:
            mine.batches.list(limit=101)
        assert refused.value.body["param"] == "limit"

        # Batches likewise: each on its file's key, listed from all of them.
        batches = [
            mine.batches.create(input_file_id=f, endpoint="/v1/chat/completions", completion_window="24h").id
            for f in own[:3]
        ]
        stranger_batch = theirs.batches.create(
            input_file_id=foreign[0], endpoint="/v1/chat/completions", completion_window="24h"
        ).id
        stored(admin, "batch", 4)
        assert [b.id for b in mine.batches.list(limit=1)] == batches[::-1]
        assert [b.id for b in theirs.batches.list()] == [stranger_batch]

        # A file deleted through the gateway leaves the list.
        assert mine.files.delete(own[4]).deleted
        assert [f.id for f in mine.files.list()] == own[3::-1]

        # A file deleted in its account outside the gateway (upstream 404) is left out, its record dropped.
        retrieve_mark = gateway.upstream.mark()
        mine.files.retrieve(own[0])
        (holder,) = served_by(gateway, retrieve_mark, own[0])
        deletion = urllib.request.Request(
            f"{gateway.upstream.base_url}/files/{own[0]}", method="DELETE", headers={"Authorization": str(holder)}
        )
        with urllib.request.urlopen(deletion, timeout=10) as answer:
            assert answer.status == 200
        assert [f.id for f in mine.files.list()] == own[3:0:-1]
        stored(admin, "file", 7)

        # An object whose key an operator disabled is left out (its account cannot be reached).
        remaining = own[3:0:-1]
        holders: dict[str, str | None] = {}
        for file_id in remaining:
            where = gateway.upstream.mark()
            mine.files.retrieve(file_id)
            (holders[file_id],) = served_by(gateway, where, file_id)
        disabled = holders[own[1]]
        index = [f"Bearer {key}" for key in UPSTREAM_KEYS].index(str(disabled))
        key_id = next(key["id"] for key in admin.get("/api/keys") if key["name"] == f"e2e-key-{index}")
        admin.call("PUT", f"/api/keys/{key_id}", {"status": "disabled"})
        reachable = [f for f in remaining if holders[f] != disabled]
        assert own[1] not in reachable
        # Every worker learns of the change within a second or so: 12 lists in a row, each on a new connection.
        deadline = time.monotonic() + 20
        streak = 0
        while streak < 12:
            with client_for(gateway, gateway.token) as fresh:
                streak = streak + 1 if [f.id for f in fresh.files.list()] == reachable else 0
            assert time.monotonic() < deadline, "a disabled key's file was still listed after 20 s"

        # Each list left one usage row: the gateway's own (no key), no tokens, its status.
        def list_rows(a: AdminClient) -> list[dict]:
            rows = a.get("/api/usage?limit=500")["data"]
            return [r for r in rows if r["method"] == "GET" and r["path"] == "/v1/files"]

        rows = admin.wait("the lists' usage rows", lambda a: (found := list_rows(a)) and len(found) >= 14 and found)
        assert all(r["key_id"] is None and r["total_tokens"] is None for r in rows), rows
        assert sorted({r["status"] for r in rows}) == [200], rows
