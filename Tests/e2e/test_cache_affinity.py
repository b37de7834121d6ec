"""Prompt-cache affinity with the official `openai` client against the real proxy: requests that share a
`prompt_cache_key` are served by one upstream key while it is healthy, and a key that leaves moves only
the values that were its own."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Iterator

import openai
import pytest

from conftest import UPSTREAM_KEYS, Gateway, launch, shut_down
from fake_upstream import FakeUpstream
from service_traffic import AdminClient

VALUES = [f"tenant-{n}" for n in range(10)]


@pytest.fixture(scope="module")
def affinity_gateway(tmp_path_factory: pytest.TempPathFactory, fake_upstream: FakeUpstream) -> Iterator[Gateway]:
    # Its own service: the test disables a key, which the shared gateway's other tests must not see.
    service = launch(tmp_path_factory.mktemp("affinity"), fake_upstream.base_url, "data")
    yield Gateway(service=service, upstream=fake_upstream)
    shut_down(service)


def served_by(gateway: Gateway, client: openai.OpenAI, rounds: int = 10) -> dict[str, set[str]]:
    """Sends each value `rounds` times (100 requests for 10 values); the upstream keys that served each."""
    mark = gateway.upstream.mark()
    for round_ in range(rounds):
        for value in VALUES:
            client.chat.completions.create(
                model="gpt-e2e-mini",
                messages=[{"role": "user", "content": f"affinity {round_}"}],
                prompt_cache_key=value,
            )
    seen = gateway.upstream.requests_since(mark)
    assert len(seen) == rounds * len(VALUES)
    keys: dict[str, set[str]] = defaultdict(set)
    for request in seen:
        keys[request.body["prompt_cache_key"]].add(request.authorization)
    return keys


def test_prompt_cache_key_stays_on_its_key_and_only_a_leaving_keys_values_move(affinity_gateway: Gateway) -> None:
    gateway = affinity_gateway
    with openai.OpenAI(base_url=gateway.base_url, api_key=gateway.token, max_retries=0, timeout=30) as client:
        before = served_by(gateway, client)
        assert set(before) == set(VALUES)
        assert all(len(keys) == 1 for keys in before.values()), before
        owner = {value: next(iter(keys)) for value, keys in before.items()}
        # The values spread over the keys (rendezvous hashing is deterministic: this holds for these values).
        assert len(set(owner.values())) >= 2, owner

        # Disable the key that serves the most values.
        leaving = max(set(owner.values()), key=lambda key: list(owner.values()).count(key))
        index = [f"Bearer {key}" for key in UPSTREAM_KEYS].index(leaving)
        admin = AdminClient(gateway.admin_url, gateway.admin_token)
        key_id = next(key["id"] for key in admin.get("/api/keys") if key["name"] == f"e2e-key-{index}")
        admin.call("PUT", f"/api/keys/{key_id}", {"status": "disabled"})
        moved = [value for value in VALUES if owner[value] == leaving]
        # Every worker sees the change within about a second; wait until the leaving key serves none of its
        # values (bounded), then measure.
        deadline = time.monotonic() + 15
        while True:
            mark = gateway.upstream.mark()
            for value in moved:
                client.chat.completions.create(
                    model="gpt-e2e-mini", messages=[{"role": "user", "content": "wait"}], prompt_cache_key=value
                )
            if all(r.authorization != leaving for r in gateway.upstream.requests_since(mark)):
                break
            assert time.monotonic() < deadline, "the disabled key was still used after 15 s"
            time.sleep(0.2)

        after = served_by(gateway, client)
        assert all(len(keys) == 1 for keys in after.values()), after
        for value in VALUES:
            if owner[value] == leaving:
                assert after[value] != {leaving}, (value, after[value])
            else:
                assert after[value] == {owner[value]}, (value, owner[value], after[value])
