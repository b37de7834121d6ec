"""Exact accounting with the official `openai` client: the cached prompt tokens and reasoning tokens an answer
reports — chat completions whole and streamed, the Responses API whole and streamed, a response cut short
(`response.incomplete`) — reach `GET /api/usage` and every `/api/stats/*` figure with their exact numbers, and
the cache hit rate per key and per model is cached / prompt tokens."""

from __future__ import annotations

from typing import Any, Iterator

import openai
import pytest

from conftest import ProxyService, launch, shut_down
from fake_accounting import (
    CACHED_TOKENS,
    INCOMPLETE_OUTPUT_TOKENS,
    INCOMPLETE_REASONING_TOKENS,
    OUTPUT_TOKENS,
    PROMPT_TOKENS,
    REASONING_TOKENS,
    FakeAccounting,
)
from service_traffic import AdminClient

MODEL = "o3-accounting"


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeAccounting]:
    fake = FakeAccounting().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, upstream: FakeAccounting) -> Iterator[ProxyService]:
    service = launch(tmp_path_factory.mktemp("accounting"), upstream.base_url, "data")
    yield service
    shut_down(service)


def test_cached_and_reasoning_tokens_reach_the_usage_log_and_every_statistic(service: ProxyService) -> None:
    client = openai.OpenAI(base_url=service.base_url, api_key=service.client_token, max_retries=0, timeout=30)
    messages: Any = [{"role": "user", "content": "a long shared prefix"}]

    whole = client.chat.completions.create(model=MODEL, messages=messages)
    assert whole.usage and whole.usage.prompt_tokens_details
    assert whole.usage.prompt_tokens_details.cached_tokens == CACHED_TOKENS
    # Streamed without asking for usage: the gateway asks upstream, and the usage chunk is kept from the client.
    chunks = list(client.chat.completions.create(model=MODEL, messages=messages, stream=True))
    assert all(chunk.usage is None for chunk in chunks)
    # Streamed asking for it: the client gets it too.
    asked = list(
        client.chat.completions.create(
            model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True}
        )
    )
    assert asked[-1].usage and asked[-1].usage.completion_tokens_details
    assert asked[-1].usage.completion_tokens_details.reasoning_tokens == REASONING_TOKENS

    response = client.responses.create(model=MODEL, input="hello")
    assert response.usage and response.usage.input_tokens_details.cached_tokens == CACHED_TOKENS
    with client.responses.stream(model=MODEL, input="hello") as stream:
        final = stream.get_final_response()
    assert final.status == "completed"
    cut = client.responses.create(model=MODEL, input="hello", max_output_tokens=16)
    assert cut.status == "incomplete"
    events = list(client.responses.create(model=MODEL, input="hello", max_output_tokens=16, stream=True))
    assert events[-1].type == "response.incomplete"

    admin = AdminClient(service.admin_url, service.admin_token)
    rows = admin.wait(
        "7 usage rows",
        lambda a: (data := a.get(f"/api/usage?model={MODEL}&limit=50")["data"]) and len(data) >= 7 and data,
        timeout=30,
    )
    assert len(rows) == 7
    by_path: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_path.setdefault(row["path"], []).append(row)
    chat = by_path["/v1/chat/completions"]
    assert len(chat) == 3
    for row in chat:
        assert row["prompt_tokens"] == PROMPT_TOKENS
        assert row["cached_tokens"] == CACHED_TOKENS
        assert row["reasoning_tokens"] == REASONING_TOKENS
        # Chat reports audio tokens, 0 here: 0, not absent.
        assert row["audio_input_tokens"] == 0 and row["audio_output_tokens"] == 0
    assert sorted(row["streamed"] for row in chat) == [False, True, True]
    responses = by_path["/v1/responses"]
    assert len(responses) == 4
    assert all(row["cached_tokens"] == CACHED_TOKENS for row in responses)
    # The Responses API reports no audio tokens: absent, not 0.
    assert all(row["audio_input_tokens"] is None and row["audio_output_tokens"] is None for row in responses)
    reasoning = sorted((row["completion_tokens"], row["reasoning_tokens"]) for row in responses)
    assert reasoning == [
        (INCOMPLETE_OUTPUT_TOKENS, INCOMPLETE_REASONING_TOKENS),
        (INCOMPLETE_OUTPUT_TOKENS, INCOMPLETE_REASONING_TOKENS),
        (OUTPUT_TOKENS, REASONING_TOKENS),
        (OUTPUT_TOKENS, REASONING_TOKENS),
    ]

    cached = 7 * CACHED_TOKENS
    reasoned = 5 * REASONING_TOKENS + 2 * INCOMPLETE_REASONING_TOKENS
    rate = cached / (7 * PROMPT_TOKENS)

    def check(totals: dict[str, Any], what: str) -> None:
        assert totals["cached_tokens"] == cached, (what, totals)
        assert totals["reasoning_tokens"] == reasoned, (what, totals)
        assert totals["prompt_tokens"] == 7 * PROMPT_TOKENS, (what, totals)
        assert totals["cache_hit_rate"] == pytest.approx(rate), (what, totals)

    check(admin.get("/api/stats/usage?period=today")["totals"], "usage")
    check(admin.get("/api/stats/overview")["all_time"], "overview")
    models = {m["model_name"]: m["totals"] for m in admin.get("/api/stats/models")}
    check(models[MODEL], "model")
    hours = admin.get("/api/stats/hourly?hours=2")["data"]
    assert sum(hour["totals"]["cached_tokens"] for hour in hours) == cached
    assert sum(hour["totals"]["reasoning_tokens"] for hour in hours) == reasoned
    tokens = admin.get("/api/stats/tokens")
    assert len(tokens) == 1
    check(tokens[0]["totals"], "token")
    keys = admin.get("/api/stats/keys")
    assert sum(key["cached_tokens"] for key in keys) == cached
    assert sum(key["reasoning_tokens"] for key in keys) == reasoned
    for key in keys:
        if key["requests"]:
            assert key["cache_hit_rate"] == pytest.approx(CACHED_TOKENS / PROMPT_TOKENS), key
        else:
            assert key["cache_hit_rate"] is None, key
