"""The browser test support itself: the headless browser starts against the real service, and the checks
the console tests rely on can fail — a deliberate console error is seen, a missing element times out."""

from __future__ import annotations

import pytest
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By

from browser_support import (
    PHONE,
    console_errors,
    goto,
    login,
    new_browser,
    paint_timings,
    press,
    wait_for,
    wait_until,
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


# Smooth scrolling as Bootstrap turns it on, a button far below the fold, and an overlay over the window.
PRESS_PAGE = (
    "data:text/html,<!doctype html><link rel=icon href='data:,'><style>:root{scroll-behavior:smooth}"
    "%23cover{position:fixed;inset:0;background:white}</style><div style='height:3000px'></div>"
    "<button id=far onclick='this.dataset.pressed=1'>far</button><div style='height:3000px'></div>"
    "<div id=cover hidden></div>"
)


def test_press_clicks_a_button_far_down_a_smooth_scrolling_page(browser: Chrome) -> None:
    browser.get(PRESS_PAGE)
    press(browser, wait_for(browser, "#far"))
    assert browser.find_element(By.ID, "far").get_attribute("data-pressed") == "1"


def test_press_waits_while_something_covers_the_element(browser: Chrome) -> None:
    browser.get(PRESS_PAGE)
    # Covered for 0.5 s, as by a dialog fading out.
    browser.execute_script(
        "const cover = document.getElementById('cover'); cover.hidden = false;"
        "setTimeout(() => { cover.hidden = true; }, 500);"
    )
    press(browser, wait_for(browser, "#far"))
    assert browser.find_element(By.ID, "far").get_attribute("data-pressed") == "1"


def test_press_fails_naming_what_covers_the_element(browser: Chrome) -> None:
    browser.get(PRESS_PAGE)
    browser.execute_script("document.getElementById('cover').hidden = false;")
    with pytest.raises(AssertionError, match=r'could not click .*far.* shows <div id="cover"'):
        press(browser, wait_for(browser, "#far"), timeout=1)
    assert browser.find_element(By.ID, "far").get_attribute("data-pressed") is None


def test_paint_timings_report_the_first_contentful_paint(browser: Chrome, console_service: ProxyService) -> None:
    browser.get(console_service.admin_url + "/healthz")
    wait_for(browser, "body")
    # The load event that ends browser.get() can come before the first paint on a busy machine: wait for it.
    def painted() -> dict[str, float] | None:
        timings = paint_timings(browser)
        return timings if timings.get("first-contentful-paint", 0) > 0 else None

    wait_until(painted, what="a first-contentful-paint entry from paint_timings")


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
