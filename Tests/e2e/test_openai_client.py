"""The official `openai` client against the real proxy binary, which forwards to a fake upstream."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections import Counter

import openai
import pytest
import urllib3

from conftest import UPSTREAM_KEYS, Gateway, ProxyService
from fake_upstream import (
    EMBEDDING_DIMENSIONS,
    MODELS,
    STREAM_PIECES,
    STREAM_TEXT,
    chat_reply,
    embedding_vector,
    prompt_tokens_for,
)

UPSTREAM_AUTH = {f"Bearer {key}" for key in UPSTREAM_KEYS}


def client_for(base_url: str, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=token, max_retries=0, timeout=30)


@pytest.fixture
def client(gateway: Gateway) -> openai.OpenAI:
    with client_for(gateway.base_url, gateway.token) as c:
        yield c


def assert_forwarded_with_upstream_key(gateway: Gateway, recorded) -> None:
    assert recorded.authorization in UPSTREAM_AUTH, recorded.authorization
    assert gateway.token not in recorded.authorization
    # The client's token must not travel upstream in any header.
    for name, value in recorded.headers.items():
        assert gateway.token not in value, f"client token leaked upstream in header {name}"


def test_chat_completion(gateway: Gateway, client: openai.OpenAI) -> None:
    mark = gateway.upstream.mark()
    messages = [
        {"role": "system", "content": "You are a test."},
        {"role": "user", "content": "say hello to the e2e suite"},
    ]
    completion = client.chat.completions.create(model="gpt-e2e-mini", messages=messages)

    expected = chat_reply(messages)
    assert completion.choices[0].message.content == expected
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gpt-e2e-mini"
    prompt = prompt_tokens_for(messages)
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == prompt
    assert completion.usage.completion_tokens == len(expected.split())
    assert completion.usage.total_tokens == prompt + len(expected.split())

    seen = gateway.upstream.requests_since(mark)
    assert len(seen) == 1, [r.path for r in seen]
    recorded = seen[0]
    assert recorded.method == "POST"
    assert recorded.path == "/v1/chat/completions"
    assert recorded.body["model"] == "gpt-e2e-mini"
    assert recorded.body["messages"] == messages
    assert_forwarded_with_upstream_key(gateway, recorded)


def test_streamed_chat_completion_arrives_incrementally(gateway: Gateway, client: openai.OpenAI) -> None:
    mark = gateway.upstream.mark()
    trace_mark = gateway.upstream.trace_mark()
    stream = client.chat.completions.create(
        model="gpt-e2e-mini", messages=[{"role": "user", "content": "stream please"}], stream=True
    )
    arrivals: list[float] = []
    pieces: list[str] = []
    finish_reasons: list[str] = []
    for chunk in stream:
        arrivals.append(time.monotonic())
        assert chunk.object == "chat.completion.chunk"
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
            if choice.finish_reason:
                finish_reasons.append(choice.finish_reason)

    assert "".join(pieces) == STREAM_TEXT
    assert pieces == STREAM_PIECES
    assert finish_reasons == ["stop"]
    # role chunk + one per piece + finish chunk
    assert len(arrivals) == len(STREAM_PIECES) + 2

    traces = gateway.upstream.traces_since(trace_mark)
    assert len(traces) == 1
    trace = traces[0]
    # The first event reached the client before the upstream had even written its last one: not buffered.
    assert arrivals[0] < trace.event_sent_at[-1], "first chunk arrived only after the upstream finished"
    # Spread of arrivals roughly matches the upstream's pacing (generous lower bound, no upper bound).
    paced = gateway.upstream.stream_delay * (len(arrivals) - 1)
    assert arrivals[-1] - arrivals[0] >= 0.5 * paced, (arrivals[-1] - arrivals[0], paced)

    seen = gateway.upstream.requests_since(mark)
    assert len(seen) == 1
    assert seen[0].body["stream"] is True
    assert_forwarded_with_upstream_key(gateway, seen[0])


def test_each_streamed_event_leaves_as_a_whole_chunk(gateway: Gateway) -> None:
    """urllib3 (under `requests`, `stream=True`) hands a chunk on only once the line break that closes it has
    arrived: each event must leave the gateway as a whole chunk, not be completed by the next event's bytes."""
    trace_mark = gateway.upstream.trace_mark()
    body = json.dumps(
        {"model": "gpt-e2e-mini", "messages": [{"role": "user", "content": "stream please"}], "stream": True}
    )
    arrivals: list[float] = []
    with urllib3.PoolManager() as pool:
        response = pool.request(
            "POST",
            gateway.base_url + "/chat/completions",
            body=body,
            headers={"authorization": f"Bearer {gateway.token}", "content-type": "application/json"},
            preload_content=False,
        )
        assert response.status == 200
        for chunk in response.read_chunked():
            if b"data: " in chunk:
                arrivals.append(time.monotonic())
        response.release_conn()
    sent = gateway.upstream.traces_since(trace_mark)[0].event_sent_at
    # The upstream paces its events 0.2 s apart: an event held back until the next one's bytes arrives as the
    # upstream sends that next one, one passed on whole some 0.2 s before. Most must (all do on a quiet machine).
    assert len(arrivals) == len(sent), (len(arrivals), len(sent))
    paced = [k for k in range(len(sent) - 1) if sent[k + 1] - sent[k] > 0.15]
    early = [k for k in paced if arrivals[k] < sent[k + 1] - 0.1]
    assert len(paced) >= len(STREAM_PIECES) - 1
    timeline = ([round(a - sent[0], 3) for a in arrivals], [round(t - sent[0], 3) for t in sent])
    assert len(early) * 2 >= len(paced), timeline


def test_streamed_chat_completion_with_usage(gateway: Gateway, client: openai.OpenAI) -> None:
    mark = gateway.upstream.mark()
    messages = [{"role": "user", "content": "count my tokens please"}]
    stream = client.chat.completions.create(
        model="gpt-e2e-mini", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks, "no chunks"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == STREAM_TEXT
    for chunk in chunks[:-1]:
        assert chunk.usage is None
    final = chunks[-1]
    assert final.choices == []
    assert final.usage is not None
    prompt = prompt_tokens_for(messages)
    assert final.usage.prompt_tokens == prompt
    assert final.usage.completion_tokens == len(STREAM_PIECES)
    assert final.usage.total_tokens == prompt + len(STREAM_PIECES)

    seen = gateway.upstream.requests_since(mark)
    assert len(seen) == 1
    assert seen[0].body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("encoding_format", [None, "float", "base64"])
def test_embeddings(gateway: Gateway, client: openai.OpenAI, encoding_format) -> None:
    mark = gateway.upstream.mark()
    inputs = ["the quick brown fox", "jumps over"]
    kwargs = {} if encoding_format is None else {"encoding_format": encoding_format}
    result = client.embeddings.create(model="text-embedding-e2e", input=inputs, **kwargs)

    assert result.object == "list"
    assert len(result.data) == 2
    for index, item in enumerate(result.data):
        assert item.index == index
        if encoding_format == "base64":
            assert isinstance(item.embedding, str)
        else:
            assert len(item.embedding) == EMBEDDING_DIMENSIONS
            assert item.embedding == embedding_vector(inputs[index], EMBEDDING_DIMENSIONS)
    assert result.usage.prompt_tokens == 6
    assert result.usage.total_tokens == 6

    seen = gateway.upstream.requests_since(mark)
    assert len(seen) == 1
    assert seen[0].path == "/v1/embeddings"
    assert seen[0].body["input"] == inputs
    assert_forwarded_with_upstream_key(gateway, seen[0])


def test_embeddings_dimensions(gateway: Gateway, client: openai.OpenAI) -> None:
    result = client.embeddings.create(model="text-embedding-e2e", input="one input", dimensions=5)
    assert len(result.data) == 1
    assert len(result.data[0].embedding) == 5
    assert result.usage.total_tokens == 2


def test_wrong_token_is_rejected(gateway: Gateway) -> None:
    mark = gateway.upstream.mark()
    with client_for(gateway.base_url, "not-a-real-token-0123456789") as bad:
        with pytest.raises(openai.AuthenticationError) as caught:
            bad.chat.completions.create(model="gpt-e2e-mini", messages=[{"role": "user", "content": "hi"}])
    error = caught.value
    assert error.status_code == 401
    assert error.code == "invalid_api_key"
    body = error.response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == "invalid_api_key"
    assert body["error"]["message"]
    assert gateway.upstream.requests_since(mark) == [], "a rejected request must not reach the upstream"


def test_missing_token_is_rejected(gateway: Gateway) -> None:
    mark = gateway.upstream.mark()
    request = urllib.request.Request(
        f"{gateway.base_url}/models", headers={"Accept": "application/json"}, method="GET"
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 401
    body = json.loads(caught.value.read())
    assert body["error"]["code"] == "invalid_api_key"
    assert gateway.upstream.requests_since(mark) == []


def test_round_robin_rotation_is_strict_turn(gateway: Gateway, client: openai.OpenAI) -> None:
    # "Light traffic": the proxy leases one round-robin position per request only while each worker sees fewer
    # than ~40 requests a second (busier workers lease blocks). Pacing request starts >= 30 ms apart keeps the
    # whole service under that on any machine; slower machines only make the traffic lighter.
    mark = gateway.upstream.mark()
    next_start = time.monotonic()
    for i in range(30):
        time.sleep(max(0.0, next_start - time.monotonic()))
        next_start = time.monotonic() + 0.03
        completion = client.chat.completions.create(
            model="gpt-e2e-mini", messages=[{"role": "user", "content": f"rotation {i}"}]
        )
        assert completion.choices[0].message.content == f"fake reply to: rotation {i}"
    seen = gateway.upstream.requests_since(mark)
    assert len(seen) == 30
    used = [r.authorization for r in seen]
    counts = Counter(used)
    assert set(counts) == UPSTREAM_AUTH, counts
    assert all(n == 10 for n in counts.values()), counts
    # Strict turn: no key is used twice within any window of 3 consecutive requests.
    for start in range(len(used) - 2):
        assert len(set(used[start : start + 3])) == 3, (start, used)


def test_models_list_passes_through(gateway: Gateway, client: openai.OpenAI) -> None:
    mark = gateway.upstream.mark()
    models = client.models.list()
    ids = [model.id for model in models]
    assert ids == MODELS
    assert all(model.owned_by == "e2e-fake" for model in models)
    seen = gateway.upstream.requests_since(mark)
    assert len(seen) == 1
    assert seen[0].method == "GET"
    assert seen[0].path == "/v1/models"
    assert_forwarded_with_upstream_key(gateway, seen[0])


def test_admin_keys_are_masked(gateway: Gateway) -> None:
    request = urllib.request.Request(
        f"{gateway.admin_url}/api/keys", headers={"Authorization": f"Bearer {gateway.admin_token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        raw = response.read().decode()
    keys = json.loads(raw)
    assert isinstance(keys, list)
    assert sorted(k["name"] for k in keys) == ["e2e-key-0", "e2e-key-1", "e2e-key-2"]
    for key in UPSTREAM_KEYS:
        assert key not in raw, "admin API must not reveal key values"
    for item in keys:
        assert item["key_value"] and item["key_value"] not in UPSTREAM_KEYS


def test_admin_requires_token(gateway: Gateway) -> None:
    request = urllib.request.Request(f"{gateway.admin_url}/api/keys")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 401


def test_upstream_unreachable(unreachable_gateway: ProxyService) -> None:
    with client_for(unreachable_gateway.base_url, unreachable_gateway.client_token) as down:
        with pytest.raises(openai.APIStatusError) as caught:
            down.chat.completions.create(model="gpt-e2e-mini", messages=[{"role": "user", "content": "anyone?"}])
    error = caught.value
    assert error.status_code == 502
    assert isinstance(error, openai.InternalServerError)
    assert error.code == "upstream_unreachable"
    body = error.response.json()
    assert body["error"]["code"] == "upstream_unreachable"
    assert "127.0.0.1" in body["error"]["message"]
