"""schemathesis against the admin API's own OpenAPI document, on the real service: no 5xx, and every
answer (status, content type, body) within the document."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from conftest import ProxyService, launch, shut_down
from fake_upstream import FakeUpstream

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


@pytest.fixture(scope="module")
def admin_service(tmp_path_factory: pytest.TempPathFactory, fake_upstream: FakeUpstream) -> Iterator[ProxyService]:
    """A service of its own: schemathesis changes and deletes whatever it finds."""
    service = launch(tmp_path_factory.mktemp("proxy-admin"), fake_upstream.base_url, "data")
    yield service
    shut_down(service)


def test_openapi_document_is_served(admin_service: ProxyService) -> None:
    with urllib.request.urlopen(f"{admin_service.admin_url}/api/openapi.json", timeout=30) as response:
        document = json.loads(response.read())
    assert document["openapi"] == "3.1.0"
    assert "/api/keys/{id}" in document["paths"]


def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_schema(
    admin_service: ProxyService, tmp_path: Path
) -> None:
    assert SCHEMATHESIS.exists(), f"schemathesis is not installed next to {sys.executable}"
    # Login is left out: its deliberate failures would throttle this address for a minute.
    result = subprocess.run(
        [
            str(SCHEMATHESIS), "run", f"{admin_service.admin_url}/api/openapi.json",
            "--header", f"Authorization: Bearer {admin_service.admin_token}",
            "--checks", CHECKS, "--max-examples", "25", "--exclude-path", "/api/auth/login",
            "--no-color", "--seed", "1",
        ],
        # Its working files (.schemathesis/) go to a temporary directory, not the checkout.
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )
    assert result.returncode == 0, f"schemathesis failed:\n{result.stdout[-20000:]}\n{result.stderr[-5000:]}"
