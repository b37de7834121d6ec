"""Browser test of a removed key's objects in the console: the keys page lists the removed key with its objects,
and reassigning them to a replacement key of the same account (the same key value added again) makes the
object's requests succeed again. A module of its own, so its service's keys can be removed and re-added."""

from __future__ import annotations

from typing import Any

import openai
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from browser_support import console_errors, goto, login, press, wait_for, wait_until
from conftest import UPSTREAM_KEYS, ProxyService
from fake_upstream import FakeUpstream
from service_traffic import AdminClient


def test_a_removed_keys_objects_are_reassigned_from_the_keys_page(
    console_service: ProxyService, fake_upstream: FakeUpstream, browser: Any
) -> None:
    service = console_service
    admin = AdminClient(service.admin_url, service.admin_token)
    client = openai.OpenAI(base_url=service.base_url, api_key=service.client_token, max_retries=0, timeout=30)
    mark = fake_upstream.mark()
    file_id = client.files.create(file=("kept.jsonl", b"{}\n"), purpose="batch").id
    holder = {r.authorization for r in fake_upstream.requests_since(mark) if r.path.endswith("/files")}
    assert len(holder) == 1, holder
    value = next(iter(holder)).removeprefix("Bearer ")
    old_id = next(k["id"] for k in admin.get("/api/keys") if k["name"] == f"e2e-key-{UPSTREAM_KEYS.index(value)}")
    admin.wait("the object recorded", lambda a: a.get(f"/api/objects?key_id={old_id}")["total"] == 1)
    admin.call("DELETE", f"/api/keys/{old_id}")
    new_id = admin.post("/api/keys", {"name": "replacement", "key_value": value})["id"]

    login(browser, service)
    goto(browser, service, "keys")
    box = wait_for(browser, f'#keys-removed-objects [data-removed-key="{old_id}"]')
    assert f"#{old_id}" in box.text
    Select(box.find_element(By.CSS_SELECTOR, "[data-role=target]")).select_by_value(str(new_id))
    press(browser, box.find_element(By.CSS_SELECTOR, "[data-action=reassign]"))
    wait_until(
        lambda: not browser.find_elements(By.CSS_SELECTOR, f'[data-removed-key="{old_id}"]'), what="removed key cleared"
    )
    listed = admin.get(f"/api/objects?key_id={new_id}")["data"]
    assert [(o["object_id"], o["key_name"]) for o in listed] == [(file_id, "replacement")]
    link = wait_for(browser, f'tr[data-key-id="{new_id}"] [data-role=objects]')
    wait_until(lambda: link.text == "1", what="count on the replacement key")

    # Every worker sends the file's requests to the replacement key (the only one whose account holds it).
    def served() -> bool:
        with openai.OpenAI(base_url=service.base_url, api_key=service.client_token, max_retries=0) as fresh:
            try:
                return fresh.files.retrieve(file_id).id == file_id
            except openai.APIStatusError:
                return False

    streak = 0

    def twelve_in_a_row() -> bool:
        nonlocal streak
        streak = streak + 1 if served() else 0
        return streak >= 12

    wait_until(twelve_in_a_row, timeout=20, interval=0, what="the reassigned file served on every worker")
    assert not console_errors(browser)
    client.close()
