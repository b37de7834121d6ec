"""The real `openai-proxy` binary as a service: provisioning through its CLI, start, stop and output.

Used by the pytest fixtures (conftest.py) and by scripts outside pytest (scripts/screenshots.py,
bench/console_paint.py). The binary comes from $OPENAI_PROXY_BIN, by default <repo>/.build/debug/openai-proxy.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("OPENAI_PROXY_BIN") or REPO / ".build" / "debug" / "openai-proxy")

UPSTREAM_KEYS = [
    "sk-e2e-alpha-0123456789abcdef",
    "sk-e2e-bravo-0123456789abcdef",
    "sk-e2e-charlie-0123456789abcdef",
]
WORKERS = 2
DRAIN_TIMEOUT_SECONDS = 5
READY_TIMEOUT_SECONDS = 60
CLI_TIMEOUT_SECONDS = 60

READY_LINE = re.compile(
    r"^openai-proxy ready: proxy (?P<proxy>http://\S+/v1), admin (?P<admin>http://\S+), "
    r"(?P<workers>\d+) workers, data (?P<data>.+)$",
    re.MULTILINE,
)

# Settings from the caller's environment must not leak into the service under test.
_SCRUBBED_PREFIXES = ("OPENAI_PROXY_", "OPENAI_API_", "KEY_ROTATION_", "LOG_", "SECRET_KEY")
# …except these: OPENAI_PROXY_CONSOLE_DIR serves the console files from a checkout instead of the copies
# compiled in, so console work can be tested without rebuilding the binary.
_PASSED_THROUGH = frozenset({"OPENAI_PROXY_CONSOLE_DIR"})


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def closed_port() -> int:
    """A port nothing listens on (bound then released without listening)."""
    return free_port()


def _tail(path: Path, limit: int = 20_000) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(missing)"
    return text if len(text) <= limit else "…" + text[-limit:]


@dataclass
class ProxyService:
    """One `openai-proxy serve` with its data directory, tokens and captured output."""

    data_dir: Path
    upstream_base_url: str
    listen_port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    strategy: str = "round_robin"
    client_token: str = ""
    admin_token: str = ""
    base_url: str = ""
    admin_url: str = ""
    process: subprocess.Popen | None = None
    exit_code: int | None = None
    # Settings of this service's own (a test's short timeout, say), on top of the suite's.
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def stdout_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.serve.stdout"

    @property
    def stderr_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.serve.stderr"

    def environment(self) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if k in _PASSED_THROUGH or not k.startswith(_SCRUBBED_PREFIXES)
        }
        env.update(
            {
                "OPENAI_PROXY_DATA_DIR": str(self.data_dir),
                "OPENAI_API_BASE_URL": self.upstream_base_url,
                "OPENAI_PROXY_LISTEN": f"127.0.0.1:{self.listen_port}",
                "OPENAI_PROXY_ADMIN_LISTEN": f"127.0.0.1:{self.admin_port}",
                "OPENAI_PROXY_WORKERS": str(WORKERS),
                "OPENAI_PROXY_DRAIN_TIMEOUT": f"{DRAIN_TIMEOUT_SECONDS}s",
                "KEY_ROTATION_STRATEGY": self.strategy,
                "LOG_LEVEL": "info",
            }
        )
        env.update(self.extra_env)
        return env

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(BINARY), *args],
            env=self.environment(),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_SECONDS,
        )
        assert result.returncode == 0, (
            f"`openai-proxy {' '.join(args)}` exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
        return result

    def provision(self, keys: list[str]) -> None:
        """Adds the upstream keys and creates the client token, before the service starts."""
        for index, key in enumerate(keys):
            self.cli("keys", "add", "--name", f"e2e-key-{index}", "--value", key)
        listing = self.cli("keys", "list").stdout
        for index in range(len(keys)):
            assert f"e2e-key-{index}" in listing, listing
        for key in keys:
            assert key not in listing, "keys list must mask values"
        lines = [line for line in self.cli("tokens", "create", "--name", "e2e-client").stdout.splitlines()]
        assert lines, "tokens create printed nothing"
        token = lines[-1].strip()
        assert token and " " not in token, f"last line is not a token: {lines!r}"
        self.client_token = token

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        stdout = open(self.stdout_path, "wb")
        stderr = open(self.stderr_path, "wb")
        try:
            self.process = subprocess.Popen(
                [str(BINARY), "serve"],
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
            )
        finally:
            stdout.close()
            stderr.close()
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while True:
            text = self.stdout_path.read_text(errors="replace")
            match = READY_LINE.search(text)
            if match:
                break
            code = self.process.poll()
            if code is not None:
                pytest.fail(f"openai-proxy serve exited {code} before it was ready\n{self.output()}")
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"openai-proxy serve not ready within {READY_TIMEOUT_SECONDS}s\n{self.output()}")
            time.sleep(0.05)
        assert match["proxy"] == f"http://127.0.0.1:{self.listen_port}/v1", match.group(0)
        assert match["admin"] == f"http://127.0.0.1:{self.admin_port}", match.group(0)
        assert int(match["workers"]) == WORKERS, match.group(0)
        self.base_url = match["proxy"]
        self.admin_url = match["admin"]
        token_file = self.data_dir / "admin.token"
        self.admin_token = token_file.read_text().strip()
        assert self.admin_token, "admin.token is empty"
        # First start shows the generated admin token once, before the ready line.
        assert self.admin_token in text[: match.start()], f"admin token not shown on first start:\n{text}"

    def stop(self) -> int:
        """SIGTERM, then wait for the drain; kills and fails when it does not exit in time."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=DRAIN_TIMEOUT_SECONDS + 10)
            except subprocess.TimeoutExpired:
                self.kill()
                pytest.fail(
                    f"openai-proxy did not exit within {DRAIN_TIMEOUT_SECONDS + 10}s of SIGTERM\n{self.output()}"
                )
        self.exit_code = self.process.returncode
        return self.exit_code

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def output(self) -> str:
        return (
            f"--- serve stdout ({self.stdout_path}) ---\n{_tail(self.stdout_path)}\n"
            f"--- serve stderr ({self.stderr_path}) ---\n{_tail(self.stderr_path)}"
        )


_running: list[ProxyService] = []


def launch(
    tmp_dir: Path, upstream_base_url: str, name: str, extra_env: dict[str, str] | None = None
) -> ProxyService:
    if not BINARY.exists():
        pytest.fail(f"openai-proxy binary not found at {BINARY} (set OPENAI_PROXY_BIN or build it first)")
    service = ProxyService(data_dir=tmp_dir / name, upstream_base_url=upstream_base_url, extra_env=extra_env or {})
    _running.append(service)
    service.provision(UPSTREAM_KEYS)
    service.start()
    return service


def shut_down(service: ProxyService) -> None:
    try:
        code = service.stop()
        assert code == 0, f"openai-proxy exited {code} after SIGTERM (expected 0)\n{service.output()}"
    finally:
        service.kill()
        if service in _running:
            _running.remove(service)
