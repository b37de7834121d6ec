"""Browser tests of the console's chat, statistics, client tokens, settings and audit pages: headless Chromium
against the real service and the fake upstream (which scripts slow and hostile chat answers)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any, Iterator

import openai
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from browser_support import attribute_values, console_errors, goto, login, new_browser, press, wait_for, wait_until, wait_visible
from conftest import UPSTREAM_KEYS, ProxyService
from fake_upstream import FakeUpstream
from service_traffic import AdminClient

MODEL = "gpt-e2e-mini"


def api(service: ProxyService, method: str, path: str, body: Any = None) -> Any:
    """The admin API with the admin token (a Bearer token needs no CSRF token)."""
    return AdminClient(service.admin_url, service.admin_token).call(method, path, body)


def proxy_status(service: ProxyService, token: str, path: str = "/models", body: Any = None) -> int:
    """The status of one plain HTTP request to the proxy port with `token`."""
    request = urllib.request.Request(
        service.base_url + path,
        method="GET" if body is None else "POST",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        error.read()
        return error.code


@pytest.fixture(scope="module")
def service(console_service: ProxyService) -> ProxyService:
    """The module's service with the fake upstream's models fetched and enabled, and every key probed."""
    models = api(console_service, "GET", "/api/models?refresh=true")
    assert any(m["model_name"] == MODEL and m["enabled"] for m in models), models
    return console_service


def text_of(browser: Any, css: str) -> str:
    return browser.execute_script("const n = document.querySelector(arguments[0]); return n ? n.textContent : null;", css)


def answer_text(browser: Any) -> str:
    """The text of the last assistant message on the chat page."""
    return browser.execute_script(
        "const all = document.querySelectorAll('#chat-messages [data-role=assistant] .opx-msg-text');"
        "return all.length ? all[all.length - 1].textContent : '';"
    )


def send_chat(browser: Any, message: str) -> None:
    Select(browser.find_element(By.CSS_SELECTOR, "#chat-model")).select_by_value(MODEL)
    field = browser.find_element(By.CSS_SELECTOR, "#chat-input")
    field.clear()
    field.send_keys(message)
    press(browser, browser.find_element(By.CSS_SELECTOR, "#chat-send"))


def chat_state(browser: Any) -> str:
    return browser.find_element(By.CSS_SELECTOR, "#chat-messages").get_attribute("data-state")


def modal_ok(browser: Any) -> None:
    """Clicks the OK button of the open console dialog (OPX.modal / OPX.confirm) once it has opened."""
    press(browser, wait_visible(browser, '.modal.show[data-shown="1"] #modal-ok'))
    wait_until(lambda: not browser.find_elements(By.CSS_SELECTOR, ".modal.show"), what="dialog closed")


def pager_next(browser: Any, container: str) -> None:
    press(browser, browser.find_element(By.CSS_SELECTOR, f"{container} [data-role=next]"))


def unexpected_errors(browser: Any, *expected: str) -> list[dict[str, Any]]:
    """The browser log's SEVERE entries, less the failed loads of `expected` URL paths the test provoked on
    purpose (Chromium logs every 4xx answer to fetch as an error, validation answers included)."""
    return [
        entry for entry in console_errors(browser)
        if not any(f"{path} - Failed to load resource: the server responded with a status of 400" in entry["message"]
                   for path in expected)
    ]


# -- chat ---------------------------------------------------------------------------------------------------


def test_chat_answer_appears_while_it_streams_and_names_the_key(
    service: ProxyService, fake_upstream: FakeUpstream, browser: Any
) -> None:
    pieces = [f"piece{i} " for i in range(8)]
    fake_upstream.script("stream slowly, please", pieces, delay=0.5)
    mark = fake_upstream.mark()
    login(browser, service)
    goto(browser, service, "chat")
    send_chat(browser, "stream slowly, please")

    first = wait_until(lambda: answer_text(browser), timeout=20, what="first streamed text")
    # Seen before the end: the page is still streaming and only part of the answer is there.
    assert chat_state(browser) == "streaming"
    assert first != "".join(pieces)
    assert browser.find_element(By.CSS_SELECTOR, "#chat-stop").is_enabled()
    wait_for(browser, '#chat-messages[data-state="done"]', timeout=30)
    assert answer_text(browser) == "".join(pieces)

    # The key the page names is the key the upstream saw.
    sent = [r for r in fake_upstream.requests_since(mark) if r.path == "/v1/chat/completions"]
    assert len(sent) == 1, sent
    expected = f"e2e-key-{UPSTREAM_KEYS.index(sent[0].authorization.removeprefix('Bearer '))}"
    # The id comes with the answer's header, the name a moment later from the stored conversation.
    served = wait_for(browser, "#chat-served[data-key-id]:not([data-key-id=''])", timeout=15)
    key_ids = {k["name"]: k["id"] for k in api(service, "GET", "/api/keys")}
    assert served.get_attribute("data-key-id") == str(key_ids[expected])
    wait_until(lambda: expected in (text_of(browser, "#chat-served") or ""), timeout=15, what="key name shown")
    assert not console_errors(browser)


def test_chat_renders_hostile_answer_and_question_as_text(
    service: ProxyService, fake_upstream: FakeUpstream, browser: Any
) -> None:
    hostile = ['Look: <script>window.__xss=1</script>', ' and <img src=x onerror="window.__xss=1">', "\nline two"]
    question = "<b>bold?</b> <img src=y onerror=\"window.__xss=2\">"
    fake_upstream.script(question, hostile, delay=0.05)
    login(browser, service)
    goto(browser, service, "chat")
    send_chat(browser, question)
    wait_for(browser, '#chat-messages[data-state="done"]', timeout=30)

    def check() -> None:
        assert answer_text(browser) == "".join(hostile)
        assert text_of(browser, "#chat-messages [data-role=user] .opx-msg-text") == question
        # Nothing ran, no element came from the texts, and the line break shows as one.
        assert browser.execute_script("return window.__xss;") is None
        counts = browser.execute_script(
            "const m = document.querySelector('#chat-messages');"
            "return [m.querySelectorAll('script').length, m.querySelectorAll('img').length,"
            " m.querySelectorAll('b').length];"
        )
        assert counts == [0, 0, 0], counts
        white_space = browser.execute_script(
            "return getComputedStyle(document.querySelector('#chat-messages [data-role=assistant] .opx-msg-text'))"
            ".whiteSpace;"
        )
        assert white_space == "pre-wrap"

    check()
    # Reopened from the history, the stored texts are text too.
    stored = wait_until(
        lambda: next((c for c in api(service, "GET", "/api/chat/history?limit=50")["data"]
                      if c["response"] == "".join(hostile)), None),
        timeout=15, what="conversation stored",
    )
    goto(browser, service, "chat", f"id={stored['id']}")
    wait_for(browser, f'#chat-reopened[data-id="{stored["id"]}"]')
    check()
    assert not console_errors(browser)


def test_stop_button_ends_a_stream(service: ProxyService, fake_upstream: FakeUpstream, browser: Any) -> None:
    pieces = [f"w{i} " for i in range(60)]
    fake_upstream.script("a very long story", pieces, delay=0.25)
    traces = fake_upstream.trace_mark()
    login(browser, service)
    goto(browser, service, "chat")
    send_chat(browser, "a very long story")
    wait_until(lambda: len(answer_text(browser)) >= 6, timeout=20, what="some streamed text")
    press(browser, browser.find_element(By.CSS_SELECTOR, "#chat-stop"))
    wait_for(browser, '#chat-messages[data-state="stopped"]', timeout=10)
    stopped_at = answer_text(browser)
    time.sleep(1.5)
    # Nothing more arrives, the answer is partial and a new message can be sent.
    assert answer_text(browser) == stopped_at
    assert len(stopped_at) < len("".join(pieces))
    assert browser.find_element(By.CSS_SELECTOR, "#chat-messages [data-stopped]")
    assert browser.find_element(By.CSS_SELECTOR, "#chat-send").is_enabled()
    assert not browser.find_element(By.CSS_SELECTOR, "#chat-stop").is_enabled()
    # The stop reaches the upstream too: its stream is cut, not played to the end for no one.
    (trace,) = fake_upstream.traces_since(traces)
    time.sleep(2)
    sent = len(trace.event_sent_at)
    time.sleep(1)
    assert len(trace.event_sent_at) == sent < len(pieces), (sent, len(pieces))
    assert not console_errors(browser)


def test_reopen_a_conversation_from_history(service: ProxyService, browser: Any) -> None:
    login(browser, service)
    goto(browser, service, "chat")
    send_chat(browser, "remember the blue whale")
    wait_for(browser, '#chat-messages[data-state="done"]', timeout=30)

    def listed() -> Any:
        goto(browser, service, "chat")
        items = browser.find_elements(By.CSS_SELECTOR, "#chat-history [data-id]")
        return next((item for item in items if "remember the blue whale" in item.text), None)

    item = wait_until(listed, timeout=20, interval=0.5, what="conversation in the history list")
    conversation_id = item.get_attribute("data-id")
    press(browser, item)
    wait_for(browser, f'#chat-reopened[data-id="{conversation_id}"]')
    wait_for(browser, 'body[data-ready="chat"]')
    assert text_of(browser, "#chat-messages [data-role=user] .opx-msg-text") == "remember the blue whale"
    assert answer_text(browser) == "Hello from the fake upstream!"
    # The stored conversation names its key (the admin API's key_name).
    wait_for(browser, "#chat-served[data-key-id]:not([data-key-id=''])")
    assert "e2e-key-" in text_of(browser, "#chat-served")
    # The reopened conversation goes on from where it was.
    send_chat(browser, "and then?")
    wait_for(browser, '#chat-messages[data-state="done"]', timeout=30)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chat-messages [data-role=user]")) == 2
    assert not console_errors(browser)


# -- client tokens ------------------------------------------------------------------------------------------


def token_row(browser: Any, name: str) -> Any:
    return wait_for(browser, f'#token-list tr[data-token-name="{name}"]')


def test_create_edit_and_revoke_a_client_token(service: ProxyService, browser: Any) -> None:
    name = f"browser-made-{time.monotonic_ns()}"
    login(browser, service)
    goto(browser, service, "tokens")
    press(browser, browser.find_element(By.CSS_SELECTOR, "#token-create"))
    wait_visible(browser, "#token-name").send_keys(name)
    browser.find_element(By.CSS_SELECTOR, "#token-rpm").send_keys("100")
    press(browser, browser.find_element(By.CSS_SELECTOR, "#token-save"))

    value = wait_visible(browser, "#token-value").get_attribute("value")
    assert value.startswith("sk-proxy-"), value
    press(browser, browser.find_element(By.CSS_SELECTOR, "#token-copy"))
    assert proxy_status(service, value) == 200
    modal_ok(browser)
    # Shown once: after the dialog, the value is nowhere in the page, nor in a fresh rendering of it.
    row = token_row(browser, name)
    assert value not in browser.page_source
    goto(browser, service, "tokens")
    assert value not in browser.page_source
    row = token_row(browser, name)
    assert "100" in row.text

    # Limits: the API's message shows next to the field; a good value is saved.
    press(browser, row.find_element(By.CSS_SELECTOR, "[data-action=edit]"))
    rpm = wait_visible(browser, "#token-rpm")
    rpm.clear()
    rpm.send_keys("0")
    press(browser, browser.find_element(By.CSS_SELECTOR, "#token-save"))
    error = wait_visible(browser, "#token-rpm_limit-error")
    assert "rpm_limit" in error.text and "1000000" in error.text, error.text
    assert "is-invalid" in rpm.get_attribute("class")
    rpm.clear()
    rpm.send_keys("42")
    press(browser, browser.find_element(By.CSS_SELECTOR, "#token-save"))
    wait_until(lambda: not browser.find_elements(By.CSS_SELECTOR, "#token-form"), what="form closed")
    row_css = f'#token-list tr[data-token-name="{name}"]'
    wait_until(lambda: "42" in (text_of(browser, row_css) or ""), what="new limit listed")
    listed = next(t for t in api(service, "GET", "/api/tokens") if t["name"] == name)
    assert listed["rpm_limit"] == 42

    # Revoke, with confirmation: listed as revoked, refused by the proxy.
    press(browser, token_row(browser, name).find_element(By.CSS_SELECTOR, "[data-action=revoke]"))
    modal_ok(browser)
    wait_for(browser, f'#token-list tr[data-token-name="{name}"] [data-status="revoked"]')
    # Workers see the revocation with their next look at the pool (well within a second).
    wait_until(lambda: proxy_status(service, value) == 401, timeout=10, interval=0.2, what="revoked token refused")
    assert not unexpected_errors(browser, f"/api/tokens/{listed['id']}")


# -- statistics ---------------------------------------------------------------------------------------------


def test_stats_draws_its_charts_and_pages_the_request_log(service: ProxyService, browser: Any) -> None:
    for index in range(27):
        body = {"model": MODEL, "messages": [{"role": "user", "content": f"stats {index}"}]}
        assert proxy_status(service, service.client_token, "/chat/completions", body) == 200
    for _ in range(3):  # the fake upstream has no such route: 404s for the error breakdown
        assert proxy_status(service, service.client_token, "/no-such-route", {"x": 1}) == 404
    wait_until(lambda: api(service, "GET", "/api/usage?status=404&limit=1")["total"] >= 3, what="404s logged")

    login(browser, service)
    goto(browser, service, "stats")
    for chart in ("keys", "models", "hours", "errors"):
        wait_for(browser, f'#stats-chart-{chart}[data-drawn="1"]')
    labels = browser.execute_script("return Chart.getChart(document.querySelector('#stats-chart-errors')).data.labels;")
    counts = browser.execute_script(
        "return Chart.getChart(document.querySelector('#stats-chart-errors')).data.datasets[0].data;"
    )
    assert dict(zip(labels, counts)).get("404", 0) >= 3, (labels, counts)

    # Cached and reasoning tokens and the cache hit rate: cards, a table per key and per model, log columns.
    # This upstream reports no cached count: 0 cached tokens, and no hit rate.
    assert text_of(browser, "#stats-cached") == "0"
    assert text_of(browser, "#stats-cache-hit") == "–"
    assert text_of(browser, "#stats-reasoning") == "0"
    for table in ("#stats-key-tokens", "#stats-model-tokens"):
        headers = [th.text for th in browser.find_elements(By.CSS_SELECTOR, f"{table} thead th")]
        assert headers[1:5] == ["Prompt", "Cached", "Cache hit rate", "Reasoning"], (table, headers)
    model_row = browser.find_element(By.CSS_SELECTOR, f'#stats-model-tokens tr[data-name="{MODEL}"]')
    assert model_row.find_elements(By.CSS_SELECTOR, "td")[3].text == "–"
    log_headers = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#log-table thead th")]
    assert "Cached" in log_headers and "Reasoning" in log_headers, log_headers

    # Paged: 25 rows a page; the second page starts at 25.
    rows = browser.find_elements(By.CSS_SELECTOR, "#log-table tbody tr")
    assert len(rows) == 25
    pager_next(browser, "#log-pager")
    wait_for(browser, '#log-table[data-offset="25"]')
    assert browser.find_elements(By.CSS_SELECTOR, "#log-table tbody tr")

    # Filtered by status: only 404s.
    browser.find_element(By.CSS_SELECTOR, "#log-status").send_keys("404")
    press(browser, browser.find_element(By.CSS_SELECTOR, "#log-apply"))
    wait_for(browser, '#log-table[data-offset="0"]')
    statuses = wait_until(
        lambda: {r.find_elements(By.CSS_SELECTOR, "td")[4].text
                 for r in browser.find_elements(By.CSS_SELECTOR, "#log-table tbody tr")} or None,
        what="filtered rows",
    )
    assert statuses == {"404"}, statuses

    # Another period renders too.
    Select(browser.find_element(By.CSS_SELECTOR, "#stats-period")).select_by_value("today")
    wait_for(browser, 'body[data-ready="stats"]')
    wait_for(browser, '#stats-chart-hours[data-drawn="1"]')
    assert not console_errors(browser)


# -- settings -----------------------------------------------------------------------------------------------


def test_settings_change_is_validated_saved_and_reloaded(service: ProxyService, browser: Any) -> None:
    login(browser, service)
    goto(browser, service, "settings")
    field = wait_visible(browser, "#setting-upstream_connect_timeout_seconds")
    field.clear()
    field.send_keys("0")
    press(browser, browser.find_element(By.CSS_SELECTOR, "#settings-save"))
    error = wait_visible(browser, "#setting-upstream_connect_timeout_seconds-error")
    assert "1 to 60" in error.text, error.text
    assert api(service, "GET", "/api/settings")["upstream_connect_timeout_seconds"] != 0

    field.clear()
    field.send_keys("7")
    Select(browser.find_element(By.CSS_SELECTOR, "#setting-rotation_strategy")).select_by_value("least_used")
    press(browser, browser.find_element(By.CSS_SELECTOR, "#settings-save"))
    wait_until(lambda: api(service, "GET", "/api/settings")["upstream_connect_timeout_seconds"] == 7, what="saved")

    browser.refresh()
    wait_for(browser, 'body[data-ready="settings"]')
    assert browser.find_element(By.CSS_SELECTOR, "#setting-upstream_connect_timeout_seconds").get_attribute("value") == "7"
    assert browser.find_element(By.CSS_SELECTOR, "#setting-rotation_strategy").get_attribute("value") == "least_used"
    settings = api(service, "GET", "/api/settings")
    assert settings["rotation_strategy"] == "least_used"
    assert {"rotation_strategy", "upstream_connect_timeout_seconds"} <= set(settings["overridden"])

    # Back to the configuration's value.
    press(browser, browser.find_element(By.CSS_SELECTOR, "[data-reset=rotation_strategy]"))
    wait_until(lambda: "rotation_strategy" not in api(service, "GET", "/api/settings")["overridden"], what="reset")
    assert not unexpected_errors(browser, "/api/settings")


# -- audit --------------------------------------------------------------------------------------------------


def test_audit_lists_the_token_creation(service: ProxyService, browser: Any) -> None:
    api(service, "POST", "/api/tokens", {"name": "audited-token"})
    login(browser, service)
    goto(browser, service, "audit")
    rows = browser.find_elements(By.CSS_SELECTOR, '#audit-table tr[data-action="token.create"]')
    row = next((r for r in rows if "audited-token" in r.text), None)
    assert row is not None, [r.text for r in rows]
    assert "admin-token" in row.text
    Select(browser.find_element(By.CSS_SELECTOR, "#audit-action")).select_by_value("auth.login")
    wait_for(browser, 'body[data-ready="audit"]')
    actions = set(attribute_values(browser, "#audit-table tr[data-action]", "data-action"))
    assert actions == {"auth.login"}, actions
    assert not console_errors(browser)


# -- objects ------------------------------------------------------------------------------------------------


def test_objects_are_listed_filtered_counted_per_key_and_revoked(service: ProxyService, browser: Any) -> None:
    with openai.OpenAI(base_url=service.base_url, api_key=service.client_token, max_retries=0, timeout=30) as client:
        uploaded = [client.files.create(file=(f"o{i}.jsonl", b"{}\n"), purpose="batch").id for i in range(2)]
        response = client.responses.create(model=MODEL, input="kept").id
    admin = AdminClient(service.admin_url, service.admin_token)
    # The records reach the database with their requests' usage rows (the collector's next batch).
    admin.wait("the objects recorded", lambda a: {*uploaded, response} <= {o["object_id"] for o in a.get("/api/objects?limit=500")["data"]})
    holder = next(o for o in admin.get("/api/objects?limit=500")["data"] if o["object_id"] == uploaded[0])

    login(browser, service)
    goto(browser, service, "objects")
    for object_id in [*uploaded, response]:
        row = wait_for(browser, f'#objects-table tr[data-object-id="{object_id}"]')
        assert "sk-" not in row.text
    assert holder["key_name"] in text_of(browser, f'#objects-table tr[data-object-id="{uploaded[0]}"]')
    # The kind filter keeps the files and drops the response.
    kind = browser.find_element(By.CSS_SELECTOR, "#objects-kind")
    kind.send_keys("file")
    kind.send_keys(Keys.ENTER)

    def shown() -> set[str]:
        return set(attribute_values(browser, "#objects-table tr[data-object-id]", "data-object-id"))

    wait_until(lambda: response not in shown() and set(uploaded) <= shown(), what="only files listed")
    assert "kind=file" in browser.current_url

    # Revoke one record, confirmed: it leaves the list and the API.
    press(browser, browser.find_element(By.CSS_SELECTOR, f'#objects-table tr[data-object-id="{uploaded[1]}"] [data-action=revoke]'))
    modal_ok(browser)
    wait_until(lambda: not browser.find_elements(By.CSS_SELECTOR, f'#objects-table tr[data-object-id="{uploaded[1]}"]'), what="revoked row gone")
    assert uploaded[1] not in {o["object_id"] for o in admin.get("/api/objects?limit=500")["data"]}

    # The keys page counts each key's objects and links to them.
    expected = next(k["count"] for k in admin.get("/api/objects/summary")["keys"] if k["key_id"] == holder["key_id"])
    goto(browser, service, "keys")
    link = wait_for(browser, f'tr[data-key-id="{holder["key_id"]}"] [data-role=objects]')
    assert link.text == str(expected)
    press(browser, link)
    wait_until(
        lambda: browser.execute_script("const s = document.querySelector('#objects-key'); return s && s.value;")
        == str(holder["key_id"]),
        what="objects page filtered by the key",
    )
    wait_for(browser, f'#objects-table tr[data-object-id="{uploaded[0]}"]')
    assert not unexpected_errors(browser)


# -- every page: Chinese, phone width -----------------------------------------------------------------------

PAGES = ["chat", "stats", "tokens", "settings", "audit", "objects"]
# What OPX.t answers for a key it has no text for; action names and other codes are shown in <code>.
KEY_LIKE = r"^(chat|stats|tokens|settings|audit|objects)\.[A-Za-z0-9_.]+$"


@pytest.fixture
def phone_browser() -> Iterator[Any]:
    driver = new_browser(390, 844, language="zh-CN")
    yield driver
    driver.quit()


def test_pages_speak_chinese_and_fit_a_phone(service: ProxyService, phone_browser: Any) -> None:
    browser = phone_browser
    login(browser, service)
    for page in PAGES:
        goto(browser, service, page)
        untranslated = browser.execute_script(
            "const re = new RegExp(arguments[0]); const found = [];"
            "const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);"
            "while (walker.nextNode()) { const n = walker.currentNode; const s = n.textContent.trim();"
            "  if (re.test(s) && !n.parentElement.closest('code')) found.push(s); }"
            "return found;",
            KEY_LIKE,
        )
        assert not untranslated, (page, untranslated)
        has_chinese = browser.execute_script("return /[\\u4e00-\\u9fff]/.test(document.querySelector('main, body').innerText);")
        assert has_chinese, page
        width = browser.execute_script("return document.documentElement.scrollWidth;")
        assert width <= 390, (page, width)
    assert not console_errors(browser)
