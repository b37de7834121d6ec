"""Fixtures that run the real `openai-proxy` binary against a fake upstream.

The binary comes from $OPENAI_PROXY_BIN, by default <repo>/.build/debug/openai-proxy. Each service gets its
own temporary data directory, free ports, 3 upstream keys and a client token made with the CLI, and is stopped
with SIGTERM at teardown, which must exit 0 within the drain timeout (proxy_service.py). The console's browser
tests get `console_service` and `browser` (headless Chromium, browser_support.py).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_upstream import FakeUpstream  # noqa: E402
from proxy_service import (  # noqa: E402,F401  (re-exported: the test files import these from conftest)
    BINARY,
    REPO,
    UPSTREAM_KEYS,
    WORKERS,
    ProxyService,
    _running,
    closed_port,
    free_port,
    launch,
    shut_down,
)

if TYPE_CHECKING:
    from selenium.webdriver import Chrome

@dataclass
class Gateway:
    """What tests use: the running service and the fake upstream it forwards to."""

    service: ProxyService
    upstream: FakeUpstream

    @property
    def base_url(self) -> str:
        return self.service.base_url

    @property
    def token(self) -> str:
        return self.service.client_token

    @property
    def admin_url(self) -> str:
        return self.service.admin_url

    @property
    def admin_token(self) -> str:
        return self.service.admin_token


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[FakeUpstream]:
    upstream = FakeUpstream(stream_delay=0.2, valid_keys=set(UPSTREAM_KEYS)).start()
    yield upstream
    upstream.stop()


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory, fake_upstream: FakeUpstream) -> Iterator[Gateway]:
    service = launch(tmp_path_factory.mktemp("proxy"), fake_upstream.base_url, "data")
    yield Gateway(service=service, upstream=fake_upstream)
    shut_down(service)


@pytest.fixture(scope="module")
def unreachable_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyService]:
    """A second service whose upstream port has nothing listening."""
    port = closed_port()
    service = launch(tmp_path_factory.mktemp("proxy-down"), f"http://127.0.0.1:{port}/v1", "data")
    yield service
    shut_down(service)


@pytest.fixture(scope="module")
def console_service(tmp_path_factory: pytest.TempPathFactory, fake_upstream: FakeUpstream) -> Iterator[ProxyService]:
    """A service of its own for a module of console browser tests (they add, change and delete things)."""
    service = launch(tmp_path_factory.mktemp("proxy-console"), fake_upstream.base_url, "data")
    yield service
    shut_down(service)


@pytest.fixture
def browser() -> Iterator["Chrome"]:
    """A fresh headless Chromium per test (1280×900, English, no cookies), its console log captured."""
    # Imported here so the rest of the suite runs where selenium is not installed.
    from browser_support import new_browser

    driver = new_browser()
    yield driver
    driver.quit()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    fixtures = set(getattr(item, "fixturenames", ()))
    uses_service = {"gateway", "unreachable_gateway", "console_service"} & fixtures
    if report.failed and uses_service:
        for service in list(_running):
            report.sections.append((f"openai-proxy output ({service.data_dir})", service.output()))
    driver = getattr(item, "funcargs", {}).get("browser")
    if report.failed and driver is not None:
        from browser_support import page_state

        try:
            log = "\n".join(f"{e.get('level')} {e.get('message')}" for e in driver.read_log())
            report.sections.append(("browser", f"{page_state(driver)}\n--- browser log ---\n{log}"))
        except Exception as error:  # a dead browser must not hide the test's own failure
            report.sections.append(("browser", f"(unavailable: {error})"))
