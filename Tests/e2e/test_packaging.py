"""Packaging checks: the systemd unit, the Dockerfile, .dockerignore and docker-compose.yml.

Self-contained: uses no fixture from conftest.py, only pytest's tmp_path.

- The unit is verified with `systemd-analyze verify` on a copy whose ExecStart points at the built
  binary (OPENAI_PROXY_BIN, else <repo>/.build/debug/openai-proxy, else /bin/true), and a negative
  control proves that this check catches typos on this machine.
- There is no Docker engine here, so the Dockerfile and compose file are checked statically, and the
  HEALTHCHECK commands of both are run for real against a live `openai-proxy serve` when the binary
  is built.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "openai-proxy.service"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
COMPOSE = REPO / "docker-compose.yml"

DRAIN_TIMEOUT_SECONDS = 20  # the server's default OPENAI_PROXY_DRAIN_TIMEOUT


def _binary() -> Path | None:
    configured = os.environ.get("OPENAI_PROXY_BIN")
    candidate = Path(configured) if configured else REPO / ".build" / "debug" / "openai-proxy"
    return candidate if candidate.is_file() and os.access(candidate, os.X_OK) else None


# --------------------------------------------------------------------------------------------------
# systemd unit


def _parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """Sections to (key, value) pairs in order; repeated keys are kept; continuation lines joined."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: str | None = None
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip() if pending else raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            sections.setdefault(current, [])
            continue
        assert current is not None, f"directive outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line}"
        sections[current].append((key.strip(), value.strip()))
    return sections


def _values(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def _last(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> str | None:
    values = _values(unit, section, key)
    return values[-1] if values else None


def _timespan_seconds(value: str) -> float:
    """systemd time span ("30", "30s", "1min 10s", "500ms") in seconds."""
    units = {
        "us": 1e-6, "usec": 1e-6, "ms": 1e-3, "msec": 1e-3, "s": 1, "sec": 1, "second": 1,
        "seconds": 1, "m": 60, "min": 60, "minute": 60, "minutes": 60, "h": 3600, "hr": 3600,
        "hour": 3600, "hours": 3600,
    }
    total = 0.0
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value.strip())
    assert parts and re.fullmatch(r"(\s*\d+(?:\.\d+)?\s*[a-z]*)+\s*", value), f"bad time span {value!r}"
    for number, unit in parts:
        assert unit in units or unit == "", f"unknown time unit in {value!r}"
        total += float(number) * (units[unit] if unit else 1)
    return total


def _is_yes(value: str | None) -> bool:
    return value is not None and value.lower() in {"yes", "true", "on", "1"}


@pytest.fixture
def unit() -> dict[str, list[tuple[str, str]]]:
    return _parse_unit(UNIT.read_text())


def test_unit_service_lifecycle(unit: dict[str, list[tuple[str, str]]]) -> None:
    assert _last(unit, "Service", "Type") == "notify"
    assert _last(unit, "Service", "NotifyAccess") == "main"
    assert _last(unit, "Service", "ExecStart") == "/usr/local/bin/openai-proxy serve"
    reload = _last(unit, "Service", "ExecReload") or ""
    assert re.fullmatch(r"(/usr)?/bin/kill -HUP \$MAINPID", reload), reload
    assert _timespan_seconds(_last(unit, "Service", "WatchdogSec") or "0") == 30
    assert _last(unit, "Service", "Restart") == "on-failure"
    assert _timespan_seconds(_last(unit, "Service", "RestartSec") or "0") == 2
    assert _last(unit, "Service", "KillMode") == "mixed"
    assert _last(unit, "Service", "KillSignal") in {"SIGTERM", "TERM", "15"}
    stop = _last(unit, "Service", "TimeoutStopSec")
    assert stop is not None and _timespan_seconds(stop) > DRAIN_TIMEOUT_SECONDS, stop
    assert "multi-user.target" in " ".join(_values(unit, "Install", "WantedBy"))


def test_unit_state_user_and_environment(unit: dict[str, list[tuple[str, str]]]) -> None:
    assert _last(unit, "Service", "StateDirectory") == "openai-proxy"
    environment = " ".join(_values(unit, "Service", "Environment"))
    assert "OPENAI_PROXY_DATA_DIR=/var/lib/openai-proxy" in shlex.split(environment)
    user = _last(unit, "Service", "User")
    assert _is_yes(_last(unit, "Service", "DynamicUser")) or (user not in (None, "", "root", "0")), (
        "the service must not run as root"
    )
    assert "-/etc/openai-proxy/env" in _values(unit, "Service", "EnvironmentFile"), "optional env file"
    assert _last(unit, "Service", "UMask") == "0077"
    assert _last(unit, "Service", "LimitNOFILE") == "65536"


HARDENING_YES = [
    "NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices", "ProtectKernelTunables",
    "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups", "ProtectClock",
    "ProtectHostname", "RestrictNamespaces", "RestrictRealtime", "RestrictSUIDSGID",
    "LockPersonality", "MemoryDenyWriteExecute",
]


def test_unit_hardening(unit: dict[str, list[tuple[str, str]]]) -> None:
    missing = [key for key in HARDENING_YES if not _is_yes(_last(unit, "Service", key))]
    assert not missing, f"hardening directives not set to yes: {missing}"
    assert _last(unit, "Service", "ProtectSystem") == "strict"
    families = set(" ".join(_values(unit, "Service", "RestrictAddressFamilies")).split())
    assert families == {"AF_INET", "AF_INET6", "AF_UNIX"}, families
    assert _last(unit, "Service", "SystemCallArchitectures") == "native"
    assert "@system-service" in " ".join(_values(unit, "Service", "SystemCallFilter")).split()
    # An empty assignment resets the set: the last CapabilityBoundingSet= must be empty.
    assert _values(unit, "Service", "CapabilityBoundingSet")[-1:] == [""], "capabilities must be dropped"


def _verify(unit_text: str, directory: Path) -> tuple[int, list[str]]:
    """Runs systemd-analyze verify on unit_text saved as openai-proxy.service in directory.

    Returns the exit code and the output lines about this unit. Without --recursive-errors,
    systemd 252 only logs parse warnings (unknown keys, bad values) and still exits 0; with
    --recursive-errors=no it fails on them and ignores problems of other units on this host.
    """
    path = directory / "openai-proxy.service"
    path.write_text(unit_text)
    command = ["systemd-analyze", "verify", "--recursive-errors=no", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    if "recursive-errors" in output and result.returncode != 0:  # a systemd older than 250
        command.remove("--recursive-errors=no")
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        output = result.stdout + result.stderr
    about_unit = [
        line for line in output.splitlines() if str(path) in line or "openai-proxy.service" in line
    ]
    return result.returncode, about_unit


def _unit_for_verify() -> str:
    """The unit with ExecStart pointing at a binary that exists here (verify checks it)."""
    binary = _binary() or Path("/bin/true")
    text = UNIT.read_text()
    rewritten, count = re.subn(
        r"^ExecStart=/usr/local/bin/openai-proxy\b", f"ExecStart={binary}", text, flags=re.M
    )
    assert count == 1, "ExecStart=/usr/local/bin/openai-proxy ... not found exactly once"
    return rewritten


def _need_systemd_analyze() -> None:
    # `make test` installs it (Debian's systemd package): a missing tool is a failed check, not a skip.
    assert shutil.which("systemd-analyze") is not None, "systemd-analyze is not installed (apt-get install systemd)"


def test_systemd_analyze_verify_passes(tmp_path: Path) -> None:
    _need_systemd_analyze()
    code, problems = _verify(_unit_for_verify(), tmp_path)
    assert code == 0 and not problems, "\n".join(problems) or f"systemd-analyze verify exited {code}"


@pytest.mark.parametrize(
    ("name", "pattern", "replacement"),
    [
        ("unknown key", r"^WatchdogSec=", "WatchdogSecs="),
        ("bad service type", r"^Type=notify$", "Type=notfy"),
        ("bad kill mode", r"^KillMode=mixed$", "KillMode=mixd"),
        ("bad time span", r"^TimeoutStopSec=(.*)$", r"TimeoutStopSec=\g<1>x"),
        ("bad boolean", r"^NoNewPrivileges=yes$", "NoNewPrivileges=yess"),
        ("bad address family", r"^RestrictAddressFamilies=.*$", "RestrictAddressFamilies=AF_INET AF_UNIXX"),
        ("bad syscall group", r"^SystemCallFilter=@system-service$", "SystemCallFilter=@system-servic"),
        ("missing binary", r"^ExecStart=\S+", "ExecStart=/nonexistent/openai-proxy"),
    ],
)
def test_systemd_analyze_verify_catches_mistakes(
    tmp_path: Path, name: str, pattern: str, replacement: str
) -> None:
    """Negative control: the verify check above would fail on a broken unit, even without systemd as PID 1."""
    _need_systemd_analyze()
    broken, count = re.subn(pattern, replacement, _unit_for_verify(), count=1, flags=re.M)
    assert count == 1, f"pattern for {name} not found in the unit"
    code, problems = _verify(broken, tmp_path)
    assert code != 0 or problems, f"systemd-analyze verify did not notice: {name}"


# --------------------------------------------------------------------------------------------------
# Dockerfile


def _dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    buffer = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and buffer):
            continue  # comments and blank lines may sit inside a continued instruction
        if not stripped:
            continue
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        line = buffer + stripped
        buffer = ""
        keyword, _, arguments = line.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    assert not buffer, "Dockerfile ends inside a continued instruction"
    return instructions


def _stages(instructions: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for keyword, arguments in instructions:
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, arguments))
    return stages


def _global_args(instructions: list[tuple[str, str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for keyword, arguments in instructions:
        if keyword == "FROM":
            break
        if keyword == "ARG" and "=" in arguments:
            name, _, default = arguments.partition("=")
            values[name.strip()] = default.strip().strip('"')
    return values


def _base_image(from_arguments: str, args: dict[str, str]) -> str:
    words = [w for w in from_arguments.split() if not w.startswith("--")]
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), words[0])


def _env(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, arguments in stage:
        if keyword != "ENV":
            continue
        words = shlex.split(arguments)
        if words and "=" not in words[0]:  # legacy "ENV NAME value"
            env[words[0]] = " ".join(words[1:])
        else:
            env.update(word.split("=", 1) for word in words)
    return env


def _json_or_words(arguments: str) -> list[str]:
    arguments = arguments.strip()
    return json.loads(arguments) if arguments.startswith("[") else arguments.split()


@pytest.fixture
def docker() -> dict:
    instructions = _dockerfile_instructions(DOCKERFILE.read_text())
    stages = _stages(instructions)
    return {"instructions": instructions, "stages": stages, "args": _global_args(instructions)}


def test_dockerfile_is_multi_stage_on_bookworm(docker: dict) -> None:
    stages, args = docker["stages"], docker["args"]
    assert len(stages) >= 2, "the Dockerfile must be multi-stage"
    build_image = _base_image(stages[0][0][1], args)
    assert re.fullmatch(r"swift:6\.\d+(\.\d+)?-bookworm", build_image), build_image
    minor = int(build_image.split(":")[1].split(".")[1].split("-")[0])
    assert minor >= 2, "dependencies declare swift-tools-version 6.2: Swift 6.2 or newer is required"
    final_image = _base_image(stages[-1][0][1], args)
    assert re.fullmatch(r"(docker\.io/)?(library/)?debian:bookworm(-\d+)?-slim", final_image), final_image


def test_dockerfile_build_stage(docker: dict) -> None:
    build = docker["stages"][0]
    runs = [a for k, a in build if k == "RUN"]
    copies = [a for k, a in build if k == "COPY"]
    assert any("libsqlite3-dev" in r and "libsystemd-dev" in r for r in runs)
    # Manifest first, resolve, then sources: dependency resolution is cached across source edits.
    order = [(k, a) for k, a in build if k in {"COPY", "RUN"}]
    manifest = next(i for i, (k, a) in enumerate(order) if k == "COPY" and "Package." in a)
    resolve = next(i for i, (k, a) in enumerate(order) if k == "RUN" and "swift package resolve" in a)
    sources = next(i for i, (k, a) in enumerate(order) if k == "COPY" and a.startswith("Sources"))
    build_step = next(i for i, (k, a) in enumerate(order) if k == "RUN" and "swift build" in a)
    assert manifest < resolve < sources < build_step
    assert any(a.startswith("Tests") for a in copies), "SwiftPM needs the declared test target's directory"
    assert any(a.startswith("Plugins") for a in copies), "the console-embedding plugin lives in Plugins/"
    build_command = order[build_step][1]
    for flag in ("-c release", "--static-swift-stdlib", "--product openai-proxy"):
        assert flag in build_command, flag


def test_dockerfile_runtime_stage(docker: dict) -> None:
    final = docker["stages"][-1]
    keywords = [k for k, _ in final]
    runs = " ".join(a for k, a in final if k == "RUN")
    for package in ("libsqlite3-0", "libsystemd0", "ca-certificates", "libjs-bootstrap5", "libjs-chart.js"):
        assert re.search(rf"(^|\s){re.escape(package)}(\s|$)", runs), f"runtime package {package} missing"
    assert not re.search(r"\bswift\b", runs), "the runtime stage needs no Swift toolchain"
    assert any(k == "COPY" and "--from=" in a and "openai-proxy" in a for k, a in final)

    users = [a for k, a in final if k == "USER"]
    assert users, "the final stage must switch to a non-root USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}, users[-1]
    # USER must come after every RUN that needs root.
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")

    volumes = [v for k, a in final if k == "VOLUME" for v in _json_or_words(a)]
    assert "/data" in volumes, volumes
    exposed = {p.split("/")[0] for k, a in final if k == "EXPOSE" for p in a.split()}
    assert {"8000", "5000"} <= exposed, exposed

    env = _env(final)
    assert env.get("OPENAI_PROXY_DATA_DIR") == "/data"
    assert env.get("OPENAI_PROXY_LISTEN") == "0.0.0.0:8000"
    assert env.get("OPENAI_PROXY_ADMIN_LISTEN") == "0.0.0.0:5000"

    assert [a for k, a in final if k == "STOPSIGNAL"][-1:] in (["SIGTERM"], ["TERM"], ["15"])
    assert _json_or_words([a for k, a in final if k == "ENTRYPOINT"][-1]) == ["openai-proxy"]
    assert _json_or_words([a for k, a in final if k == "CMD"][-1]) == ["serve"]
    assert _dockerfile_healthcheck(docker)[:1] == ["bash"]


def _dockerfile_healthcheck(docker: dict) -> list[str]:
    checks = [a for k, a in docker["stages"][-1] if k == "HEALTHCHECK"]
    assert checks, "the final stage must have a HEALTHCHECK"
    words = checks[-1].split()
    options = [w for w in words[: words.index("CMD")]] if "CMD" in words else []
    assert all(o.startswith("--") for o in options), options
    command = checks[-1][checks[-1].index("CMD") + 3 :].strip()
    assert command.startswith("["), "use the exec form so the check needs no /bin/sh quoting"
    return json.loads(command)


def test_dockerignore_keeps_context_small_but_complete() -> None:
    patterns = [
        line.strip() for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    normalized = {p.rstrip("/") for p in patterns}
    assert ".build" in normalized and ".git" in normalized and "data" in normalized
    for needed in ("Sources", "Plugins", "Tests", "Package.swift", "Package.resolved", "Package.*"):
        assert needed not in normalized, f".dockerignore excludes {needed}, which the build needs"
    assert not any(p.startswith("!") for p in patterns)


# --------------------------------------------------------------------------------------------------
# docker-compose.yml


@pytest.fixture
def compose_service() -> dict:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict) and "services" in document
    service = document["services"]["openai-proxy"]
    service["_volumes"] = document.get("volumes") or {}
    return service


def test_compose_service(compose_service: dict) -> None:
    service = compose_service
    build = service["build"]
    assert build == "." or (isinstance(build, dict) and build.get("context") == "."), build
    ports = [str(p) for p in service["ports"]]
    assert "8000:8000" in ports, ports
    assert "127.0.0.1:5000:5000" in ports, "publish the admin port on the host's loopback only"
    assert not any(p.endswith(":5000") and not p.startswith("127.0.0.1:") for p in ports)

    mounts = [str(v) for v in service["volumes"]]
    data = [m for m in mounts if m.split(":")[1:2] == ["/data"]]
    assert data, f"no volume mounted at /data: {mounts}"
    assert data[0].split(":")[0] in service["_volumes"], "the /data volume should be a declared named volume"

    environment = service["environment"]
    keys = set(environment) if isinstance(environment, dict) else {e.split("=")[0] for e in environment}
    assert {"OPENAI_API_BASE_URL", "KEY_ROTATION_STRATEGY", "SECRET_KEY"} <= keys, keys
    assert service["restart"] == "unless-stopped"
    assert _timespan_seconds(str(service["stop_grace_period"])) > DRAIN_TIMEOUT_SECONDS
    assert service.get("stop_signal", "SIGTERM") == "SIGTERM"
    test = service["healthcheck"]["test"]
    assert isinstance(test, list) and test[0] == "CMD", test


def test_compose_cluster_profile_adds_postgresql_and_a_second_gateway() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    # The default `docker compose up` stays one gateway on SQLite.
    assert "profiles" not in services["openai-proxy"]
    assert services["postgres"]["profiles"] == ["cluster"]
    assert services["openai-proxy-2"]["profiles"] == ["cluster"]
    first, second = services["openai-proxy"], services["openai-proxy-2"]
    for gateway in (first, second):
        assert gateway["environment"]["OPENAI_PROXY_DATABASE_URL"] == "${OPENAI_PROXY_DATABASE_URL:-}"
        # Both read the one SECRET_KEY and the database's password from the same .env entries.
        assert gateway["environment"]["SECRET_KEY"] == "${SECRET_KEY:-}"
        assert gateway["environment"]["PGPASSWORD"] == services["postgres"]["environment"]["POSTGRES_PASSWORD"]
        # Waits for the database when the profile runs it, and for nothing without it.
        assert gateway["depends_on"]["postgres"] == {"condition": "service_healthy", "required": False}
    # Each gateway has its own /data (admin token, stats socket, usage spool) and its own host ports.
    assert {str(v).split(":")[0] for v in first["volumes"]}.isdisjoint(str(v).split(":")[0] for v in second["volumes"])
    assert {str(p) for p in second["ports"]} == {"8001:8000", "127.0.0.1:5001:5000"}
    # The database is reached on the compose network only.
    assert "ports" not in services["postgres"]
    assert services["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]


def _compose_healthcheck(service: dict) -> list[str]:
    # In a compose file "$$" is a literal "$" and "${VAR}" would be interpolated from the host: the
    # check must use only "$$" so that it reads the container's variables.
    words = service["healthcheck"]["test"][1:]
    assert not any("$" in w.replace("$$", "") for w in words), (
        "unescaped $ in the compose healthcheck would be interpolated by Compose"
    )
    return [w.replace("$$", "$") for w in words]


def test_compose_healthcheck_mirrors_dockerfile(docker: dict, compose_service: dict) -> None:
    dockerfile_check = _dockerfile_healthcheck(docker)
    compose_check = _compose_healthcheck(compose_service)
    assert compose_check[:2] == dockerfile_check[:2]
    assert " ".join(compose_check[2].split()) == " ".join(dockerfile_check[2].split())


# --------------------------------------------------------------------------------------------------
# The health checks, run for real against the server (no Docker needed: they only use bash).


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except Exception:
        return None


def _run_check(command: list[str], proxy_port: int, admin_port: int) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "OPENAI_PROXY_LISTEN": f"0.0.0.0:{proxy_port}",
        "OPENAI_PROXY_ADMIN_LISTEN": f"0.0.0.0:{admin_port}",
    }
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=15)


class _Status503(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_healthchecks_against_live_server(tmp_path: Path, docker: dict, compose_service: dict) -> None:
    binary = _binary()
    if binary is None:
        pytest.skip("openai-proxy is not built (set OPENAI_PROXY_BIN or run swift build)")
    checks = {"Dockerfile": _dockerfile_healthcheck(docker), "compose": _compose_healthcheck(compose_service)}
    proxy_port, admin_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "OPENAI_PROXY_DATA_DIR": str(tmp_path / "data"),
        "OPENAI_PROXY_LISTEN": f"127.0.0.1:{proxy_port}",
        "OPENAI_PROXY_ADMIN_LISTEN": f"127.0.0.1:{admin_port}",
        "OPENAI_PROXY_WORKERS": "1",
        "OPENAI_PROXY_DRAIN_TIMEOUT": "2s",
        "OPENAI_API_BASE_URL": f"http://127.0.0.1:{_free_port()}/v1",
    }
    env.pop("NOTIFY_SOCKET", None)
    env.pop("OPENAI_PROXY_CONFIG", None)
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [str(binary), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    stub = http.server.HTTPServer(("127.0.0.1", 0), _Status503)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    try:
        deadline = time.monotonic() + 60
        while not (
            _get(f"http://127.0.0.1:{proxy_port}/healthz") == 200
            and _get(f"http://127.0.0.1:{admin_port}/healthz") == 200
        ):
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "server not healthy within 60 s"
            time.sleep(0.2)

        for name, command in checks.items():
            ok = _run_check(command, proxy_port, admin_port)
            assert ok.returncode == 0, f"{name} healthcheck failed on a healthy server: {ok.stdout}{ok.stderr}"
            closed = _run_check(command, proxy_port, _free_port())
            assert closed.returncode != 0, f"{name} healthcheck passed with the admin port closed"
            unhealthy = _run_check(command, stub.server_address[1], admin_port)
            assert unhealthy.returncode != 0, f"{name} healthcheck passed on a 503"

        # docker stop / systemctl stop: SIGTERM to the supervisor, clean exit.
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0, (tmp_path / "serve.log").read_text()
    finally:
        stub.shutdown()
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        log.close()
