#!/usr/bin/env python3
"""How long the console's dashboard takes to show with a full request log (`make bench-console`).

Starts the real service (2 workers) against the e2e tests' fake upstream in a temporary data directory,
imports 50 keys through the admin API, sends 10,000 requests through the proxy port (concurrent keep-alive
clients) and waits until the collector has stored every one (the request log's total). Then it opens the
dashboard N times, each in a fresh headless Chromium (empty cache) that carries a logged-in session cookie,
and reports the medians of:
- first-contentful-paint (the browser's paint timing);
- ready: `body[data-ready="dashboard"]` set (the page's data fetched and rendered);
- chart drawn: the first `canvas[data-drawn="1"]` (Chart.js has drawn the 24-hour chart);
all in ms from navigation start, recorded inside the page by a MutationObserver installed before any of the
page's scripts, so polling adds nothing.

usage: OPENAI_PROXY_BIN=.build/release/openai-proxy .venv/bin/python bench/console_paint.py
         [--keys 50] [--rows 10000] [--runs 7] [--out bench/out]
"""

from __future__ import annotations

import argparse
import http.cookies
import json
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Tests" / "e2e"))

from browser_support import console_errors, new_browser, paint_timings, wait_until  # noqa: E402
from fake_upstream import FakeUpstream  # noqa: E402
from proxy_service import BINARY, ProxyService  # noqa: E402
from service_traffic import AdminClient, ProxyRequest, chat_body, send_requests  # noqa: E402

# Runs in every new document before its own scripts: notes when the dashboard is ready and when a chart
# is first drawn, in performance.now() time (ms since navigation start).
MARKS_SCRIPT = """
window.__opxMarks = {};
new MutationObserver(() => {
  const marks = window.__opxMarks;
  const body = document.body;
  if (!marks.ready && body && body.dataset.ready === 'dashboard') marks.ready = performance.now();
  if (!marks.drawn && document.querySelector('canvas[data-drawn="1"]')) marks.drawn = performance.now();
}).observe(document, {subtree: true, childList: true, attributes: true,
                      attributeFilter: ['data-ready', 'data-drawn']});
"""


def session_cookie(service: ProxyService) -> str:
    """A logged-in session's cookie value, through POST /api/auth/login as the login page does it."""
    request = urllib.request.Request(
        service.admin_url + "/api/auth/login",
        data=json.dumps({"admin_token": service.admin_token}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        for header in response.headers.get_all("Set-Cookie") or []:
            cookie = http.cookies.SimpleCookie(header)
            if "opx_session" in cookie:
                return cookie["opx_session"].value
    raise RuntimeError("POST /api/auth/login set no opx_session cookie")


def seed(service: ProxyService, upstream_keys: list[str], rows: int) -> None:
    admin = AdminClient(service.admin_url, service.admin_token)
    imported = admin.post("/api/keys/import", {"keys": upstream_keys, "name_prefix": "bench-key"})
    assert imported["added"] == len(upstream_keys), imported
    token = admin.post("/api/tokens", {"name": "bench-client"})["token"]
    # Every key probed (models known) before traffic, so the pool is as it would be in use.
    admin.wait(
        "the keys' first probes",
        lambda a: all(key.get("models_checked_at") for key in keys_of(a.get("/api/keys"))),
        timeout=120,
    )
    before = admin.get("/api/usage?limit=1")["total"]
    models = ["gpt-e2e-mini", "gpt-e2e-large"]
    requests = [
        ProxyRequest(token, "/chat/completions", chat_body(models[i % 2], f"request {i}")) for i in range(rows)
    ]
    started = time.monotonic()
    statuses = send_requests(service.base_url, requests, concurrency=16)
    sent = time.monotonic() - started
    print(f"console-paint: {rows} requests through the proxy in {sent:.1f} s: {statuses}", file=sys.stderr)
    assert statuses == {200: rows}, statuses
    admin.wait(
        f"{rows} rows in the request log",
        lambda a: a.get("/api/usage?limit=1")["total"] - before >= rows,
        timeout=120,
    )


def keys_of(answer: object) -> list[dict]:
    return answer["data"] if isinstance(answer, dict) else answer  # a list, or a page of one


def measure_once(service: ProxyService, cookie: str) -> dict[str, float]:
    browser = new_browser()
    try:
        # Through CDP, so no page of the origin has to be opened first (that would warm the cache).
        browser.execute_cdp_cmd(
            "Network.setCookie",
            {"name": "opx_session", "value": cookie, "url": service.admin_url + "/", "httpOnly": True},
        )
        browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": MARKS_SCRIPT})
        browser.get(service.admin_url + "/#/dashboard")
        marks = wait_until(
            lambda: browser.execute_script(
                "const m = window.__opxMarks; return m && m.ready && m.drawn ? m : null;"
            ),
            timeout=60,
            what="the dashboard ready with its chart drawn",
        )
        paint = paint_timings(browser)
        navigation = browser.execute_script(
            "const n = performance.getEntriesByType('navigation')[0];"
            "return {dom_content_loaded: n.domContentLoadedEventEnd, load: n.loadEventEnd};"
        )
        errors = console_errors(browser)
        if errors:
            raise RuntimeError(f"the dashboard logged errors: {errors}")
        return {
            "first_contentful_paint_ms": paint.get("first-contentful-paint", float("nan")),
            "dom_content_loaded_ms": navigation["dom_content_loaded"],
            "ready_ms": marks["ready"],
            "chart_drawn_ms": marks["drawn"],
        }
    finally:
        browser.quit()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=50)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    args = parser.parse_args()
    if not BINARY.exists():
        print(f"console-paint: {BINARY} is missing (build it, or set OPENAI_PROXY_BIN)", file=sys.stderr)
        return 1
    keys = [f"sk-bench-console-{i:03d}-0123456789abcdef" for i in range(args.keys)]
    upstream = FakeUpstream(stream_delay=0.0, valid_keys=set(keys)).start()
    tmp = Path(tempfile.mkdtemp(prefix="openai-proxy-console-paint."))
    service = ProxyService(data_dir=tmp / "data", upstream_base_url=upstream.base_url)
    try:
        service.start()
        seed(service, keys, args.rows)
        cookie = session_cookie(service)
        # One unmeasured load: the service's first answers (page cache, SQLite) are not what is measured.
        measure_once(service, cookie)
        runs = []
        for run in range(args.runs):
            result = measure_once(service, cookie)
            runs.append(result)
            print(f"console-paint: run {run + 1}: " + ", ".join(f"{k} {v:.0f}" for k, v in result.items()),
                  file=sys.stderr)
    except BaseException:
        print(service.output(), file=sys.stderr)
        raise
    finally:
        code = service.stop()
        upstream.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    medians = {name: statistics.median(run[name] for run in runs) for name in runs[0]}
    report = {
        "binary": str(BINARY),
        "keys": args.keys,
        "request_log_rows": args.rows,
        "runs": runs,
        "medians": medians,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"console-paint-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"Dashboard with {args.keys} keys and {args.rows} request-log rows, median of {args.runs} fresh browsers:")
    print(f"  first contentful paint   {medians['first_contentful_paint_ms']:7.0f} ms")
    print(f"  DOMContentLoaded         {medians['dom_content_loaded_ms']:7.0f} ms")
    print(f"  body[data-ready]         {medians['ready_ms']:7.0f} ms")
    print(f"  chart drawn              {medians['chart_drawn_ms']:7.0f} ms")
    print(f"  (binary {BINARY}; raw figures in {path})")
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
