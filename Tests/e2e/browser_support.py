"""Headless Chromium for the console's browser tests, the screenshots and the first-paint measurement.

Debian's `chromium` and `chromium-driver` packages (scripts/install-deps.sh test), driven by selenium. The
browser's console log is captured (`goog:loggingPrefs`), so every test can end with
`assert not console_errors(browser)`.

    browser = new_browser()
    login(browser, service)                # the admin token; waits for body[data-ready="dashboard"]
    goto(browser, service, "keys")         # sets #/keys; waits for body[data-ready="keys"]
    wait_for(browser, "canvas[data-drawn='1']")
    press(browser, browser.find_element(By.CSS_SELECTOR, "#keys-add"))
    assert not console_errors(browser)
"""

from __future__ import annotations

import os
import time
import urllib.request
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import (
    ElementClickInterceptedException,
    ElementNotInteractableException,
    TimeoutException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = Path(os.environ.get("CHROMIUM_BIN") or "/usr/bin/chromium")
CHROMEDRIVER = Path(os.environ.get("CHROMEDRIVER_BIN") or "/usr/bin/chromedriver")

DESKTOP = (1280, 900)
PHONE = (390, 844)
# A debug build on two shared cores can take a few seconds for a page's first API answers.
WAIT_SECONDS = 20.0


class _Browser(webdriver.Chrome):
    """A Chrome driver that keeps every browser log entry it has read.

    WebDriver hands out each log entry once (`get_log` drains the buffer); keeping them here lets
    `console_errors` be asked any number of times and still see everything since the start.
    """

    log_entries: list[dict[str, Any]]

    def read_log(self) -> list[dict[str, Any]]:
        self.log_entries.extend(self.get_log("browser"))
        return list(self.log_entries)


def new_browser(width: int = DESKTOP[0], height: int = DESKTOP[1], *, language: str = "en-US") -> _Browser:
    """A headless Chromium with the given window size and `navigator.language`, its console log captured."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.exists():
            raise RuntimeError(f"{path} is missing: install Debian's {package} (scripts/install-deps.sh test)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    options.add_argument("--headless=new")
    options.add_argument(f"--window-size={width},{height}")
    options.add_argument(f"--lang={language}")
    options.add_experimental_option("prefs", {"intl.accept_languages": language})
    # Chromium refuses to start its sandbox as root (containers, CI); there is nothing else to protect here.
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")
    # Containers often have a 64 MB /dev/shm, too small for the renderer.
    options.add_argument("--disable-dev-shm-usage")
    options.add_argument("--disable-gpu")
    options.add_argument("--no-first-run")
    options.add_argument("--disable-extensions")
    options.add_argument("--hide-scrollbars")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = _Browser(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    browser.log_entries = []
    if width < 500:
        # Desktop Chromium keeps windows at least ~500 px wide; emulate a phone's viewport instead.
        set_viewport(browser, width, height, mobile=True)
    return browser


def set_viewport(browser: webdriver.Chrome, width: int, height: int, *, mobile: bool = False) -> None:
    """Makes the page's viewport exactly `width`×`height` CSS pixels (a phone when `mobile`)."""
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
    )


def wait_for(browser: webdriver.Chrome, css: str, timeout: float = WAIT_SECONDS) -> WebElement:
    """The first element matching `css`, once there is one; fails with the page's state when there is none."""
    try:
        return WebDriverWait(browser, timeout, poll_frequency=0.05).until(
            expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
        )
    except TimeoutException:
        raise AssertionError(f"no element matches {css!r} after {timeout:.0f}s\n{page_state(browser)}") from None


def wait_visible(browser: webdriver.Chrome, css: str, timeout: float = WAIT_SECONDS) -> WebElement:
    """The first element matching `css` once it is displayed."""
    try:
        return WebDriverWait(browser, timeout, poll_frequency=0.05).until(
            expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, css))
        )
    except TimeoutException:
        raise AssertionError(f"{css!r} is not visible after {timeout:.0f}s\n{page_state(browser)}") from None


# Scrolls `element` to the middle of the window at once and names what its centre shows: "" when it is the
# element itself (or inside it), else a short description of what covers it. Bootstrap turns on
# `scroll-behavior: smooth`, so a plain scrollIntoView() starts an animation: a click sent right after it aims
# where the element will be, not where it is, and each further scrollIntoView restarts the animation.
_ON_TOP = """
const element = arguments[0];
element.scrollIntoView({block: "center", inline: "center", behavior: "instant"});
const box = element.getBoundingClientRect();
if (box.width === 0 || box.height === 0) return "nothing: the element has no size";
const top = document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2);
if (top !== null && (top === element || element.contains(top))) return "";
if (top === null) return "nothing: its centre is outside the window";
return top.outerHTML.slice(0, 200);
"""


def press(browser: webdriver.Chrome, element: WebElement, timeout: float = WAIT_SECONDS) -> None:
    """Clicks `element` once it is on top: scrolled to the middle of the window without animation, and nothing
    else (a fading dialog, a toast, a sticky bar) over its centre. Waits while something covers it; fails with
    what covered it. The element is scrolled again before each look, as rows above it may grow meanwhile."""
    covered = ""

    def clicked() -> bool:
        nonlocal covered
        covered = browser.execute_script(_ON_TOP, element)
        if covered:
            return False
        try:
            element.click()
            return True
        except (ElementClickInterceptedException, ElementNotInteractableException) as error:
            # Covered between the look and the click (a toast that just appeared): look again.
            covered = error.msg.splitlines()[0]
            return False

    try:
        wait_until(clicked, timeout, what="element on top")
    except AssertionError:
        raise AssertionError(
            f"could not click {element.get_attribute('outerHTML')[:200]} within {timeout:.0f}s; its centre "
            f"shows {covered}\n{page_state(browser)}"
        ) from None


def wait_ready(browser: webdriver.Chrome, page: str, timeout: float = WAIT_SECONDS) -> None:
    """Until the router says `page` has rendered (`body[data-ready="<page>"]`, set when render resolves)."""
    wait_for(browser, f'body[data-ready="{page}"]', timeout)


def login(browser: webdriver.Chrome, service: Any, timeout: float = WAIT_SECONDS) -> None:
    """Opens the console, logs in with the service's admin token and waits for the dashboard."""
    browser.get(service.admin_url + "/")
    field = wait_visible(browser, "#login-token", timeout)
    field.clear()
    field.send_keys(service.admin_token)
    browser.find_element(By.CSS_SELECTOR, "#login-submit").click()
    wait_ready(browser, "dashboard", timeout)


def goto(browser: webdriver.Chrome, service: Any, page: str, query: str = "", timeout: float = WAIT_SECONDS) -> None:
    """Shows `page` (`#/<page>?<query>`) and waits until it has rendered.

    data-ready is dropped here before the hash changes (the router drops it too when a navigation starts), so a
    stale data-ready of the same page cannot end the wait early.
    """
    if not browser.current_url.startswith(service.admin_url):
        browser.get(service.admin_url + "/")
    hash_ = f"#/{page}" + (f"?{query}" if query else "")
    # Setting the hash it already has fires no hashchange: send one so the page renders again.
    browser.execute_script(
        "const same = window.location.hash === arguments[0];"
        "document.body.removeAttribute('data-ready'); window.location.hash = arguments[0];"
        "if (same) window.dispatchEvent(new HashChangeEvent('hashchange'));",
        hash_,
    )
    wait_ready(browser, page, timeout)


def console_errors(browser: webdriver.Chrome) -> list[dict[str, Any]]:
    """Every SEVERE entry of the browser's console log since it started (errors, failed loads, CSP blocks)."""
    entries = browser.read_log() if isinstance(browser, _Browser) else browser.get_log("browser")
    return [entry for entry in entries if entry.get("level") == "SEVERE"]


def paint_timings(browser: webdriver.Chrome) -> dict[str, float]:
    """The page's paint entries in ms since navigation start, e.g. {"first-contentful-paint": 212.4}."""
    entries = browser.execute_script(
        "return performance.getEntriesByType('paint').map(e => [e.name, e.startTime]);"
    )
    return {name: float(start) for name, start in entries}


def attribute_values(browser: webdriver.Chrome, selector: str, attribute: str) -> list[Any]:
    """`attribute` of every element `selector` matches, read in one script: the page may re-render a table between
    finding its rows and reading them one by one (a stale element reference), never within one script."""
    return browser.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]), e => e.getAttribute(arguments[1]));",
        selector,
        attribute,
    )


def wait_until(predicate: Any, timeout: float = WAIT_SECONDS, interval: float = 0.05, what: str = "condition") -> Any:
    """Polls `predicate()` until it returns something truthy (returned); fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met after {timeout:.0f}s")
        time.sleep(interval)


def page_state(browser: webdriver.Chrome) -> str:
    """A short description of where the browser is, for failure messages."""
    try:
        state = browser.execute_script(
            "return {url: location.href, page: document.body && document.body.dataset.page,"
            " ready: document.body && document.body.dataset.ready,"
            " text: document.body ? document.body.innerText.slice(0, 600) : ''};"
        )
    except Exception as error:  # the page may be gone; the description must not hide the real failure
        return f"(page state unavailable: {error})"
    errors = [entry.get("message", "") for entry in console_errors(browser)]
    return (
        f"url={state['url']} data-page={state['page']!r} data-ready={state['ready']!r}\n"
        f"console errors: {errors}\nvisible text: {state['text']!r}\n"
        f"{server_probe(state['url'])}"
    )


def server_probe(url: str) -> str:
    """Whether the page's server answers a plain request of its own right now, and how fast: tells a stuck
    server from a stuck browser when a page never gets ready."""
    origin = "/".join(url.split("/")[:3])
    started = time.monotonic()
    try:
        with urllib.request.urlopen(origin + "/", timeout=5) as response:
            return f"server: GET {origin}/ answered {response.status} in {time.monotonic() - started:.2f} s"
    except Exception as error:  # reported, never raised: the description must not hide the real failure
        return f"server: GET {origin}/ failed after {time.monotonic() - started:.2f} s: {error}"


def full_page_screenshot(browser: webdriver.Chrome, path: Path, width: int, *, mobile: bool = False,
                         max_height: int = 6000) -> None:
    """A PNG of the whole page at `width` CSS px: the viewport grows to the content's height for the shot."""
    height = browser.execute_script(
        "return Math.ceil(Math.max(document.documentElement.scrollHeight, document.body.scrollHeight));"
    )
    height = max(300, min(int(height), max_height))
    set_viewport(browser, width, height, mobile=mobile)
    # The pointer stays where the last click was; a hover highlight there would be in the picture.
    browser.execute_cdp_cmd("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": width - 1, "y": height - 1})
    try:
        # Layout and charts react to the new size; give them a frame or two.
        browser.execute_async_script(
            "const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(() => done()));"
        )
        time.sleep(0.3)
        path.write_bytes(browser.get_screenshot_as_png())
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        if mobile or width < 500:
            set_viewport(browser, width, PHONE[1], mobile=True)
