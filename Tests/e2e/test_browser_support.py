"""The browser test support itself: the headless browser starts against the real service, and the checks
the console tests rely on can fail — a deliberate console error is seen, a missing element times out."""

from __future__ import annotations

import pytest
from selenium.webdriver import Chrome

from browser_support import (
    PHONE,
    console_errors,
    goto,
    login,
    new_browser,
    paint_timings,
    wait_for,
)
from conftest import ProxyService

# A page of our own with nothing that could log an error by itself (no favicon request, no script).
QUIET_PAGE = (
    "data:text/html,<!doctype html><meta name=viewport content='width=device-width'>"
    "<link rel=icon href='data:,'><title>quiet</title><p>quiet page</p>"
)


def test_browser_opens_the_running_service(browser: Chrome, console_service: ProxyService) -> None:
    browser.get(console_service.admin_url + "/healthz")
    assert '"status":"ok"' in wait_for(browser, "body").text.replace(" ", "")
    assert browser.execute_script("return window.innerWidth;") == 1280
    assert browser.execute_script("return navigator.language;") == "en-US"


def test_console_errors_catches_logged_errors_and_uncaught_exceptions(browser: Chrome) -> None:
    browser.get(QUIET_PAGE)
    wait_for(browser, "p")
    browser.execute_script("console.log('only information'); console.warn('only a warning');")
    assert not console_errors(browser), "log and warn entries are not errors"
    browser.execute_script("console.error('deliberate failure 41');")
    browser.execute_script("setTimeout(() => { throw new Error('uncaught failure 42'); }, 0);")
    browser.execute_async_script("setTimeout(arguments[0], 100);")
    messages = [entry["message"] for entry in console_errors(browser)]
    assert any("deliberate failure 41" in message for message in messages), messages
    assert any("uncaught failure 42" in message for message in messages), messages
    # Entries are kept: asking again still reports them (WebDriver hands each log entry out only once).
    assert len(console_errors(browser)) == len(messages)


def test_console_errors_catches_a_failed_load(browser: Chrome, console_service: ProxyService) -> None:
    browser.get(console_service.admin_url + "/healthz")
    status = browser.execute_async_script(
        "fetch('/api/no-such-route-for-the-browser-test').then(r => arguments[0](r.status));"
    )
    assert status in (401, 404), status
    messages = [entry["message"] for entry in console_errors(browser)]
    assert any("no-such-route-for-the-browser-test" in message for message in messages), messages


def test_wait_for_fails_with_the_page_state_when_nothing_matches(browser: Chrome) -> None:
    browser.get(QUIET_PAGE)
    with pytest.raises(AssertionError, match=r"no-such-element.*\n.*url=data:"):
        wait_for(browser, "#no-such-element", timeout=0.5)


def test_paint_timings_report_the_first_contentful_paint(browser: Chrome, console_service: ProxyService) -> None:
    browser.get(console_service.admin_url + "/healthz")
    wait_for(browser, "body")
    timings = paint_timings(browser)
    assert timings.get("first-contentful-paint", 0) > 0, timings


def test_phone_browser_lays_out_a_390_px_page(console_service: ProxyService) -> None:
    phone = new_browser(*PHONE)
    try:
        phone.get(QUIET_PAGE)
        assert phone.execute_script("return window.innerWidth;") == PHONE[0]
        # A real phone's layout: a page without a viewport meta tag is laid out 980 px wide and shrunk.
        phone.get(console_service.admin_url + "/healthz")
        assert phone.execute_script("return window.innerWidth;") == 980
    finally:
        phone.quit()


def test_login_and_goto_wait_for_the_pages_the_router_renders(browser: Chrome, console_service: ProxyService) -> None:
    login(browser, console_service)
    assert browser.execute_script("return document.body.dataset.ready;") == "dashboard"
    goto(browser, console_service, "keys")
    assert browser.execute_script("return [document.body.dataset.page, location.hash];") == ["keys", "#/keys"]
    # The same page again: goto drops data-ready first, so this returns only once the page rendered anew.
    goto(browser, console_service, "keys")
    assert browser.execute_script("return document.body.dataset.ready;") == "keys"
    # A page that never renders ends in a clear failure, not a hang.
    with pytest.raises(AssertionError, match=r'data-ready="no-such-page"'):
        goto(browser, console_service, "no-such-page", timeout=1.5)
    assert not console_errors(browser)
