"""The web console's core pages in headless Chromium against the real service and the fake upstream: login
(a wrong token refused), the keys page (add, import, test one, test all, a hostile name shown as text),
models refreshed from the upstream, the dashboard's chart and its self-refresh, the language and theme
switches (remembered), the phone layout, the notice when Bootstrap and Chart.js are missing; and a scan of
the console's files for APIs that parse HTML or evaluate code. One service and one browser for the module;
every browser test ends with no unexpected error in the browser's log."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from browser_support import attribute_values, console_errors, goto, login, new_browser, press, set_viewport, wait_for, wait_visible
from conftest import UPSTREAM_KEYS, ProxyService
from fake_upstream import MODELS
from service_traffic import AdminClient

CONSOLE_DIR = Path(__file__).resolve().parents[2] / "Sources" / "AdminServer" / "Console"
WAIT_SECONDS = 20


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """One Chromium for the module (overrides conftest's per-test one): the tests go on from one another's
    session, which keeps the module quick."""
    driver = new_browser()
    yield driver
    driver.quit()


def unexpected_errors(browser: WebDriver) -> list[dict]:
    """The browser log's SEVERE entries, but for the 401 of the deliberately wrong login and the vendor files
    blocked on purpose."""
    return [
        e for e in console_errors(browser)
        if not ("/api/auth/login" in e["message"] and "401" in e["message"])
        and not ("/vendor/" in e["message"] and "ERR_BLOCKED_BY_CLIENT" in e["message"])
    ]


# --- helpers -----------------------------------------------------------------------------------------


def click(browser: WebDriver, selector: str) -> None:
    press(browser, wait_visible(browser, selector))


def modal_closed(browser: WebDriver) -> None:
    WebDriverWait(browser, WAIT_SECONDS).until(lambda b: not b.find_elements(By.CSS_SELECTOR, ".modal"))


def admin_api(service: ProxyService, method: str, path: str, body: object | None = None) -> object:
    return AdminClient(service.admin_url, service.admin_token).call(method, path, body)


def key_row(browser: WebDriver, name: str):
    """The keys table's row whose name cell reads exactly `name`."""
    for row in browser.find_elements(By.CSS_SELECTOR, "#keys-table tr[data-key-id]"):
        if row.find_element(By.CSS_SELECTOR, '[data-role="name"]').text == name:
            return row
    return None


@pytest.fixture()
def signed_in(browser: WebDriver, console_service: ProxyService) -> WebDriver:
    """The browser on the console with a session (logging in when the module's first test has not)."""
    if not browser.current_url.startswith(console_service.admin_url):
        login(browser, console_service)
    return browser


# --- tests -------------------------------------------------------------------------------------------


def test_console_files_neither_parse_html_nor_evaluate_code() -> None:
    files = sorted(CONSOLE_DIR.iterdir())
    assert {"index.html", "app.css", "app.js", "page-keys.js"} <= {f.name for f in files}
    forbidden = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\b|new Function|DOMParser")
    for file in files:
        text = file.read_text()
        assert not forbidden.search(text), f"{file.name} uses {forbidden.search(text).group(0)}"
    page = (CONSOLE_DIR / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", page), "index.html has an inline script"
    assert not re.search(r"\sstyle=|\son\w+=", page), "index.html has an inline style or handler"


def test_login_refuses_a_wrong_token_then_signs_in(browser: WebDriver, console_service: ProxyService) -> None:
    browser.get(console_service.admin_url + "/")
    wait_for(browser, 'body[data-ready="login"]')
    browser.find_element(By.ID, "login-token").send_keys("not-the-admin-token-000")
    browser.find_element(By.ID, "login-submit").click()
    error = wait_visible(browser, "#login-error")
    assert error.text == "Wrong admin token."
    # The refused login is the one error the browser may log: its 401 answer.
    assert not unexpected_errors(browser)

    token = browser.find_element(By.ID, "login-token")
    token.clear()
    token.send_keys(console_service.admin_token)
    browser.find_element(By.ID, "login-submit").click()
    wait_for(browser, 'body[data-ready="dashboard"]')
    nav = attribute_values(browser, "a[data-nav]", "data-nav")
    assert nav == ["dashboard", "keys", "objects", "models", "chat", "stats", "tokens", "settings", "audit"]
    assert not unexpected_errors(browser)


def test_add_a_key(signed_in: WebDriver, console_service: ProxyService) -> None:
    browser = signed_in
    goto(browser, console_service, "keys")
    click(browser, "#keys-add")
    wait_visible(browser, '.modal[data-shown="1"] #key-name').send_keys("console-added")
    browser.find_element(By.ID, "key-value").send_keys("sk-console-added-0123456789")
    click(browser, "#modal-ok")
    modal_closed(browser)
    WebDriverWait(browser, WAIT_SECONDS).until(lambda b: key_row(b, "console-added") is not None)
    row = key_row(browser, "console-added")
    assert "sk-…6789" in row.text, row.text
    assert "sk-console-added-0123456789" not in browser.page_source
    # The keys table shows each key's cache hit rate: "—" for a key no request went to yet.
    headers = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#keys-table thead th")]
    rate = row.find_elements(By.CSS_SELECTOR, "td")[headers.index("Cache hit rate")].text
    assert rate == "—", (headers, rate)
    assert any(k["name"] == "console-added" for k in admin_api(console_service, "GET", "/api/keys"))
    assert not unexpected_errors(browser)


def test_import_five_keys_shows_added_and_duplicate(signed_in: WebDriver, console_service: ProxyService) -> None:
    browser = signed_in
    goto(browser, console_service, "keys")
    before = len(admin_api(console_service, "GET", "/api/keys"))
    click(browser, "#keys-import")
    pasted = [f"sk-console-import-{i}-0123456789" for i in range(4)] + [UPSTREAM_KEYS[0]]
    wait_visible(browser, '.modal[data-shown="1"] #import-keys').send_keys("\n".join(pasted))
    browser.find_element(By.ID, "import-prefix").send_keys("imported")
    click(browser, "#modal-ok")
    result = wait_visible(browser, "#keys-import-result")
    assert (result.get_attribute("data-added"), result.get_attribute("data-duplicate"), result.get_attribute("data-rejected")) == ("4", "1", "0")
    assert "4 added" in result.text and "1 duplicate" in result.text and "0 rejected" in result.text, result.text
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda b: len(b.find_elements(By.CSS_SELECTOR, "#keys-table tr[data-key-id]")) == before + 4)
    assert not unexpected_errors(browser)


def test_test_one_key_and_all_keys(signed_in: WebDriver, console_service: ProxyService) -> None:
    browser = signed_in
    goto(browser, console_service, "keys")
    press(browser, key_row(browser, "e2e-key-0").find_element(By.CSS_SELECTOR, '[data-action="test"]'))
    result = wait_for(browser, '#keys-test-result[data-result="ok"]')
    assert "e2e-key-0" in result.text and "HTTP 200" in result.text, result.text

    # The fake upstream knows only its three keys: the others fail and turn invalid.
    click(browser, "#keys-test-all")
    run = wait_for(browser, '#keys-test-all[data-finished="1"]', timeout=60)
    total = len([k for k in admin_api(console_service, "GET", "/api/keys") if k["status"] != "disabled"])
    assert int(run.get_attribute("data-total")) == total
    assert int(run.get_attribute("data-done")) == total
    assert int(run.get_attribute("data-passed")) == 3, run.text
    assert f"Tested {total} keys" in run.text
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, '#keys-table tr[data-state="invalid"]'))
    assert not unexpected_errors(browser)


def test_refresh_models_from_the_upstream(signed_in: WebDriver, console_service: ProxyService) -> None:
    browser = signed_in
    goto(browser, console_service, "models")
    click(browser, "#models-refresh")
    notice = wait_for(browser, '#models-notice[data-state="done"]')
    assert "3 models" in notice.text, notice.text
    listed = set(attribute_values(browser, "#models-table tr[data-model]", "data-model"))
    assert set(MODELS) <= listed
    assert not unexpected_errors(browser)


def test_dashboard_draws_its_chart(signed_in: WebDriver, console_service: ProxyService) -> None:
    browser = signed_in
    request = urllib.request.Request(
        console_service.base_url + "/chat/completions", method="POST",
        data=json.dumps({"model": MODELS[0], "messages": [{"role": "user", "content": "hello"}]}).encode(),
        headers={"Authorization": f"Bearer {console_service.client_token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    goto(browser, console_service, "dashboard")
    wait_for(browser, 'canvas#dash-chart[data-drawn="1"]')
    # Usage reaches the stats within the collector's batch interval; the page refreshes itself every 10 s.
    WebDriverWait(browser, 30).until(
        lambda b: b.find_element(By.CSS_SELECTOR, '#dash-requests [data-role="value"]').text not in ("…", "0"))
    assert browser.find_element(By.CSS_SELECTOR, '#dash-keys [data-role="value"]').text.isdigit()
    assert "ms" in browser.find_element(By.CSS_SELECTOR, '#dash-latency [data-role="value"]').text
    # The top keys and models show their cache hit rate ("—": this upstream reports no cached count).
    for table in ("#dash-top-models", "#dash-top-keys"):
        headers = [th.text for th in browser.find_elements(By.CSS_SELECTOR, f"{table} thead th")]
        assert headers[-1] == "Cache hit rate", (table, headers)
        cells = [row.find_elements(By.CSS_SELECTOR, "td")[-1].text
                 for row in browser.find_elements(By.CSS_SELECTOR, f"{table} tbody tr")]
        assert cells and set(cells) == {"—"}, (table, cells)
    assert not unexpected_errors(browser)


def test_dashboard_shows_requests_refused_before_auth(signed_in: WebDriver, console_service: ProxyService) -> None:
    browser = signed_in
    request = urllib.request.Request(
        console_service.base_url + "/chat/completions", method="POST", data=b"{}",
        headers={"Authorization": "Bearer sk-not-a-proxy-token", "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 401
    goto(browser, console_service, "dashboard")
    # Counted per minute by the worker (sent within a second), then shown at the page's next refresh (10 s).
    WebDriverWait(browser, 30).until(
        lambda b: b.find_element(By.CSS_SELECTOR, '#dash-refused [data-role="value"]').text not in ("…", "0"))
    split = browser.find_element(By.CSS_SELECTOR, '#dash-refused [data-role="refused-split"]').text
    wrong = re.search(r"wrong token (\d+)", split)
    assert wrong and int(wrong.group(1)) >= 1, split
    assert not unexpected_errors(browser)


def test_dashboard_refreshes_itself_and_stops_when_left(signed_in: WebDriver, console_service: ProxyService) -> None:
    browser = signed_in
    fetches = "return performance.getEntriesByType('resource').filter(e => e.name.includes('/api/stats/overview')).length"
    # A full resource-timing buffer would record no more fetches: start from an empty, larger one.
    browser.execute_script("performance.clearResourceTimings(); performance.setResourceTimingBufferSize(1000)")
    goto(browser, console_service, "dashboard")
    first = browser.execute_script(fetches)
    assert first >= 1
    # Every 10 s while shown.
    WebDriverWait(browser, 15, poll_frequency=0.5).until(lambda b: b.execute_script(fetches) > first)
    goto(browser, console_service, "keys")
    left = browser.execute_script(fetches)
    time.sleep(11)
    assert browser.execute_script(fetches) == left, "the dashboard kept refreshing after it was left"
    assert not unexpected_errors(browser)


def test_language_switch_is_remembered(signed_in: WebDriver, console_service: ProxyService) -> None:
    browser = signed_in
    goto(browser, console_service, "keys")
    assert browser.find_element(By.CSS_SELECTOR, 'a[data-nav="keys"]').text == "Keys"
    click(browser, "#lang-toggle")
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda b: b.find_element(By.CSS_SELECTOR, 'a[data-nav="keys"]').text == "密钥")
    wait_for(browser, 'body[data-ready="keys"]')
    assert browser.find_element(By.CSS_SELECTOR, "#keys-add").text == "添加密钥"
    browser.refresh()
    wait_for(browser, 'body[data-ready="keys"]')
    assert browser.find_element(By.CSS_SELECTOR, 'a[data-nav="dashboard"]').text == "仪表盘"
    assert browser.execute_script("return document.documentElement.lang") == "zh-CN"
    click(browser, "#lang-toggle")
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda b: b.find_element(By.CSS_SELECTOR, 'a[data-nav="keys"]').text == "Keys")
    assert not unexpected_errors(browser)


def test_dark_theme_is_remembered(signed_in: WebDriver, console_service: ProxyService) -> None:
    browser = signed_in
    goto(browser, console_service, "dashboard")
    dark = "return document.documentElement.classList.contains('opx-dark')"
    background = "return getComputedStyle(document.body).backgroundColor"
    light_background = browser.execute_script(background)
    assert browser.execute_script(dark) is False
    click(browser, "#theme-toggle")
    assert browser.execute_script(dark) is True
    assert browser.execute_script(background) != light_background
    browser.refresh()
    wait_for(browser, 'body[data-ready="dashboard"]')
    assert browser.execute_script(dark) is True
    wait_for(browser, 'canvas#dash-chart[data-drawn="1"]')
    click(browser, "#theme-toggle")
    assert browser.execute_script(dark) is False
    assert not unexpected_errors(browser)


def test_a_hostile_key_name_renders_as_text(signed_in: WebDriver, console_service: ProxyService) -> None:
    browser = signed_in
    hostile = "<img src=x onerror=alert(1)>"
    admin_api(console_service, "POST", "/api/keys", {"name": hostile, "key_value": "sk-hostile-name-0123456789"})
    goto(browser, console_service, "dashboard")
    browser.execute_script("window.__xss = 0; window.alert = function () { window.__xss = 1; };")
    goto(browser, console_service, "keys")
    row = key_row(browser, hostile)
    assert row is not None, "the literal name is not shown"
    key_id = row.get_attribute("data-key-id")
    press(browser, row.find_element(By.CSS_SELECTOR, '[data-action="delete"]'))
    dialog = wait_visible(browser, '.modal[data-shown="1"] .modal-body')
    assert hostile in dialog.text
    click(browser, "#modal-cancel")
    modal_closed(browser)
    assert browser.execute_script("return document.querySelectorAll('img').length") == 0
    assert browser.execute_script("return window.__xss") == 0
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 - raises when no alert is open
    admin_api(console_service, "DELETE", f"/api/keys/{key_id}")
    assert not unexpected_errors(browser)


def test_phone_width_collapses_the_menu(signed_in: WebDriver, console_service: ProxyService) -> None:
    browser = signed_in
    set_viewport(browser, 390, 844, mobile=True)
    try:
        goto(browser, console_service, "keys")
        link = browser.find_element(By.CSS_SELECTOR, 'a[data-nav="models"]')
        assert not link.is_displayed(), "the nav should fold into the menu at 390 px"
        press(browser, browser.find_element(By.CSS_SELECTOR, ".navbar-toggler"))
        press(browser, wait_visible(browser, 'a[data-nav="models"]'))
        wait_for(browser, 'body[data-ready="models"]')
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width}px wide at 390px"
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert not unexpected_errors(browser)


def test_without_bootstrap_and_chart_js_the_page_says_what_to_install(
    signed_in: WebDriver, console_service: ProxyService
) -> None:
    browser = signed_in
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/vendor/*"]})
    try:
        browser.get(console_service.admin_url + "/")
        wait_for(browser, 'body[data-ready="vendor-missing"]')
        notice = wait_visible(browser, "#vendor-notice")
        assert "apt-get install libjs-bootstrap5 libjs-chart.js" in notice.text, notice.text
        assert "OPENAI_PROXY_CONSOLE_VENDOR_DIR" in notice.text
        assert not browser.find_elements(By.ID, "login-token")
    finally:
        browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
    browser.get(console_service.admin_url + "/")
    wait_for(browser, 'body[data-ready="dashboard"]')
    assert not browser.find_element(By.ID, "vendor-notice").is_displayed()
    assert not unexpected_errors(browser)
