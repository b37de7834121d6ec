#!/usr/bin/env python3
"""`make screenshots`: a PNG of every console page, at desktop (1280 px) and phone (390 px) width, into
docs/screenshots/.

It starts the real service (the built binary, 2 workers) against the fake upstream of the e2e tests in a
temporary data directory and fills it the way real use does:
- keys added through the admin API, with names; the fake upstream refuses one (invalid), rate-limits one
  (cooling) and says another is out of quota (quota_exhausted); one is disabled by the operator;
- client tokens with limits through the API (one revoked), models refreshed from the upstream;
- a few hundred requests through the proxy port with several tokens and models, streamed and not, a few
  refused (unknown model, a model the token may not use);
- conversations through POST /api/chat, as the console's chat page sends them;
- the 23 hours before this one: usage rows written to the collector's socket in the workers' own wire
  format with past timestamps (a proxy cannot date a request in the past; without them the 24-hour charts
  would show a single bar). `--no-history` leaves them out.

usage: .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--keep] [--no-history] [--serve]
  --serve: seed, then keep the service running (no screenshots) to look at the console by hand.
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import socket
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Tests" / "e2e"))

from browser_support import (  # noqa: E402
    DESKTOP,
    PHONE,
    console_errors,
    full_page_screenshot,
    goto,
    login,
    new_browser,
    wait_for,
    wait_until,
)
from fake_upstream import FakeUpstream  # noqa: E402
from proxy_service import BINARY, ProxyService  # noqa: E402
from service_traffic import AdminClient, ProxyRequest, chat_body, send_requests  # noqa: E402

PAGES = ["dashboard", "keys", "models", "chat", "stats", "tokens", "settings", "audit"]
MODELS = ["gpt-4o", "gpt-4o-mini", "gpt-4.1-mini", "o3-mini", "text-embedding-3-small"]
CHAT_MODELS = MODELS[:4]
# Traffic shares per model, as a team's traffic tends to look: mostly the small models.
MODEL_WEIGHTS = [0.22, 0.45, 0.2, 0.08, 0.05]


def key_value(rng: random.Random) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "sk-proj-" + "".join(rng.choice(alphabet) for _ in range(48))


def make_pool(rng: random.Random) -> list[dict]:
    """The keys: name, value and how the fake upstream treats them."""
    plan = [
        ("prod-primary", "ok"),
        ("prod-secondary", "ok"),
        ("batch-jobs", "ok"),
        ("华东团队", "ok"),
        ("eu-team", "ok"),
        ("research-sandbox", "rate_limited"),
        ("trial-account", "no_quota"),
        ("former-contractor", "invalid"),
        ("staging", "disabled"),
    ]
    return [{"name": name, "value": key_value(rng), "kind": kind} for name, kind in plan]


REPLIES = {
    "rotate": (
        "Rotate in three steps: add the new key, watch it serve for a day, then delete the old one. The pool keeps"
        " answering the whole time, because requests only go to keys that are active."
    ),
    "haiku": "Keys in a quiet pool, / one cools while the others serve — / the requests flow on.",
    "zh": "可以。先在密钥页面添加新密钥，确认它处于可用状态并正常处理请求，再删除旧密钥。整个过程中服务不会中断。",
}


def reply_for(messages: list[dict]) -> str:
    text = str(messages[-1].get("content", "")) if messages else ""
    if "haiku" in text:
        return REPLIES["haiku"]
    if any("\u4e00" <= ch <= "\u9fff" for ch in text):
        return REPLIES["zh"]
    if "rotate" in text:
        return REPLIES["rotate"]
    return "Sure. " + " ".join(text.split()[:12]) + " — done."


PROMPTS = [
    "Summarise this support ticket in two sentences.",
    "Translate the release notes into German.",
    "Write a SQL query that counts orders per day.",
    "Classify the sentiment of this review.",
    "Extract the invoice number and total from the text.",
    "Suggest three titles for a blog post about caching.",
]


def seed(service: ProxyService, upstream: FakeUpstream, pool: list[dict], rng: random.Random, history: bool) -> dict:
    """Fills the running service; returns what the screenshots need (a conversation id)."""
    admin = AdminClient(service.admin_url, service.admin_token)
    ids = {}
    for key in pool:
        ids[key["name"]] = admin.post("/api/keys", {"name": key["name"], "key_value": key["value"]})["id"]
    admin.put(f"/api/keys/{ids['staging']}", {"status": "disabled"})
    # The service probes new keys within a second; wait until the one the upstream refuses is invalid.
    admin.wait(
        "the first probes",
        lambda a: a.get(f"/api/keys/{ids['former-contractor']}")["status"] == "invalid",
    )
    admin.get("/api/models?refresh=true")
    admin.put("/api/models/o3-mini", {"description": "Reasoning model; slower, for hard questions"})
    admin.post("/api/models/text-embedding-3-small/disable")
    admin.post(
        "/api/models",
        {"model_name": "ft:gpt-4o-mini:acme:support-v2", "description": "Our support fine-tune (added by hand)"},
    )

    expires = (datetime.now(timezone.utc) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    tokens = {
        "web-app": admin.post("/api/tokens", {"name": "web-app", "rpm_limit": 600}),
        "data-pipeline": admin.post(
            "/api/tokens", {"name": "data-pipeline", "allowed_models": ["gpt-4o-mini", "text-embedding-3-small"]}
        ),
        "mobile-app": admin.post("/api/tokens", {"name": "mobile-app", "token_quota": 5_000_000}),
        "ci-smoke-tests": admin.post("/api/tokens", {"name": "ci-smoke-tests", "expires_at": expires}),
        "legacy-integration": admin.post("/api/tokens", {"name": "legacy-integration"}),
    }
    admin.call("DELETE", f"/api/tokens/{tokens['legacy-integration']['id']}")
    admin.put("/api/settings", {"rotation_strategy": "least_used"})

    if history:
        send_history(service, admin, list(ids.values()), [t["id"] for t in tokens.values()], rng)

    requests = []
    live = [name for name in tokens if name != "legacy-integration"]
    for i in range(420):
        name = rng.choice(live)
        token = tokens[name]["token"]
        model = rng.choices(MODELS, MODEL_WEIGHTS)[0]
        if name == "data-pipeline":
            model = "gpt-4o" if rng.random() < 0.08 else "gpt-4o-mini"  # gpt-4o: refused, not allowed
        if model.startswith("text-embedding"):
            body = {"model": model, "input": rng.choice(PROMPTS)}
            requests.append(ProxyRequest(token, "/embeddings", body))
            continue
        if i % 97 == 13:
            model = "gpt-5-preview"  # no key reaches it: 404 model_not_found
        requests.append(ProxyRequest(token, "/chat/completions", chat_body(model, rng.choice(PROMPTS), i % 7 == 0)))
    statuses = send_requests(service.base_url, requests, concurrency=12)
    print(f"screenshots: {len(requests)} requests through the proxy: {dict(sorted(statuses.items()))}")

    # Conversations, as the chat page sends them (non-streamed and streamed).
    admin.post("/api/chat", chat_body("gpt-4o-mini", "How do I rotate an API key without downtime?"))
    admin.post("/api/chat", chat_body("gpt-4o", "Write a haiku about a key pool."))
    admin.call("POST", "/api/chat", chat_body("gpt-4.1-mini", "怎样在不中断服务的情况下更换密钥？", True), raw=True)
    expected = len(requests) + 3
    admin.wait("the request log", lambda a: a.get("/api/usage?limit=1")["total"] >= expected, timeout=60)
    history = admin.get("/api/chat/history?limit=10")["data"]
    conversation = next(item["id"] for item in history if item["model"] == "gpt-4o-mini")
    return {"conversation": conversation}


def send_history(service: ProxyService, admin: AdminClient, key_ids: list[int], token_ids: list[int],
                 rng: random.Random) -> None:
    """Usage rows for the 23 hours before this one, into the collector's socket (the workers' wire format)."""
    now = time.time()
    this_hour = int(now) - int(now) % 3600
    lines = []
    serving = key_ids[:5]
    for hours_ago in range(23, 0, -1):
        start = this_hour - hours_ago * 3600
        local_hour = (datetime.fromtimestamp(start).hour) % 24
        # A working day's curve: quiet at night, busiest in the afternoon.
        volume = int(25 + 90 * max(0.0, math.sin((local_hour - 6) / 16 * math.pi)) + rng.randint(0, 15))
        for _ in range(volume):
            model = rng.choices(MODELS, MODEL_WEIGHTS)[0]
            status, error = 200, ""
            roll = rng.random()
            if roll < 0.03:
                status, error = 429, "rate_limit_exceeded"
            elif roll < 0.045:
                status, error = 502, "upstream_unreachable"
            elif roll < 0.055:
                status, error = 400, ""
            prompt = rng.randint(40, 900)
            completion = 0 if model.startswith("text-embedding") or status != 200 else rng.randint(20, 600)
            latency = rng.lognormvariate(6.4, 0.55) if status == 200 else rng.uniform(30, 400)
            streamed = status == 200 and rng.random() < 0.3
            fields = [
                "u2", f"history-{uuid.uuid4().hex}", str(int((start + rng.uniform(0, 3599)) * 1000)),
                str(rng.randint(0, 1)), str(rng.choice(serving)), str(rng.choice(token_ids[:4])), model, "POST",
                "/v1/embeddings" if model.startswith("text-embedding") else "/v1/chat/completions", str(status),
                f"{latency:.1f}", f"{latency * 0.35:.1f}" if streamed else "", "1" if streamed else "0",
                str(prompt), str(completion), str(prompt + completion), error, "0", "0", "", "",
            ]
            lines.append("\t".join(fields) + "\n")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(service.data_dir / "stats.sock"))
    sock.sendall("".join(lines).encode())
    acked, buffer = 0, b""
    sock.settimeout(60)
    while acked < len(lines):
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("the collector closed the connection before acknowledging every row")
        buffer += chunk
        *done, buffer = buffer.split(b"\n")
        for line in done:
            if line.startswith(b"a"):
                acked = max(acked, int(line[1:]))
    sock.close()
    print(f"screenshots: {len(lines)} usage rows for the 23 hours before this one, through the collector")


def wait_charts(browser) -> None:
    """Until every chart on the page is drawn, then past Chart.js's entry animation."""
    wait_until(
        lambda: browser.execute_script(
            "const c = [...document.querySelectorAll('canvas')];"
            "return c.every(x => x.dataset.drawn === '1' || x.offsetParent === null);"
        ),
        timeout=20,
        what="every chart drawn",
    )
    time.sleep(1.2)


def shoot(browser, service: ProxyService, out: Path, kind: str, width: int, seeded: dict) -> list[str]:
    mobile = kind == "phone"
    written = []
    browser.get(service.admin_url + "/")
    wait_for(browser, "#login-token")
    time.sleep(0.3)
    full_page_screenshot(browser, out / f"login-{kind}.png", width, mobile=mobile)
    written.append(f"login-{kind}.png")
    login(browser, service)
    for page in PAGES:
        query = f"id={seeded['conversation']}" if page == "chat" else ""
        goto(browser, service, page, query)
        wait_charts(browser)
        full_page_screenshot(browser, out / f"{page}-{kind}.png", width, mobile=mobile)
        written.append(f"{page}-{kind}.png")
    # The dark theme in Chinese, through the console's own toggles (on a phone they sit in the collapsed
    # menu, hence clicks from script).
    browser.execute_script("document.querySelector('#lang-toggle').click();")
    browser.execute_script("document.querySelector('#theme-toggle').click();")
    wait_until(
        lambda: browser.execute_script(
            "return document.documentElement.classList.contains('opx-dark') && localStorage.getItem('opx.lang') === 'zh';"
        ),
        what="the dark theme in Chinese",
    )
    for page in ["dashboard", "keys"]:
        goto(browser, service, page)
        wait_charts(browser)
        full_page_screenshot(browser, out / f"{page}-{kind}-dark-zh.png", width, mobile=mobile)
        written.append(f"{page}-{kind}-dark-zh.png")
    errors = console_errors(browser)
    if errors:
        raise RuntimeError(f"the console logged errors while taking the {kind} screenshots: {errors}")
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    parser.add_argument("--no-history", action="store_true", help="no rows for the hours before this one")
    parser.add_argument("--serve", action="store_true", help="seed, then keep serving until Ctrl-C")
    args = parser.parse_args()
    if not BINARY.exists():
        print(f"screenshots: {BINARY} is missing: build it first (swift build --product openai-proxy)", file=sys.stderr)
        return 1
    rng = random.Random(6)
    pool = make_pool(rng)
    usable = [key["value"] for key in pool if key["kind"] != "invalid"]
    failures = {key["value"]: key["kind"] for key in pool if key["kind"] in ("rate_limited", "no_quota")}
    upstream = FakeUpstream(
        stream_delay=0.05, valid_keys=set(usable), key_failures=failures, reply_delay=(0.05, 0.9),
        rate_limit_headers=True, models=MODELS, reply_for=reply_for,
    ).start()
    tmp = Path(tempfile.mkdtemp(prefix="openai-proxy-screenshots."))
    service = ProxyService(data_dir=tmp / "data", upstream_base_url=upstream.base_url)
    args.out.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    try:
        service.start()
        print(f"screenshots: service up at {service.admin_url} (data {service.data_dir})")
        seeded = seed(service, upstream, pool, rng, history=not args.no_history)
        if args.serve:
            print(f"screenshots: console at {service.admin_url}/ — admin token {service.admin_token}; Ctrl-C stops")
            try:
                while service.process.poll() is None:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
            return 0
        for kind, (width, height) in (("desktop", DESKTOP), ("phone", PHONE)):
            browser = new_browser(width, height)
            try:
                written += shoot(browser, service, args.out, kind, width, seeded)
            finally:
                browser.quit()
    except BaseException:
        print(service.output(), file=sys.stderr)
        raise
    finally:
        code = service.stop()
        upstream.stop()
        if args.keep:
            print(f"screenshots: data kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    total = sum((args.out / name).stat().st_size for name in written)
    print(f"screenshots: {len(written)} PNGs ({total / 1e6:.1f} MB) in {args.out}; service exited {code}")
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
