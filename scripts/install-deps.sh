#!/usr/bin/env bash
# Installs what `make run`, `make test`, `make bench` and `make screenshots` need and is missing: Debian
# packages through apt-get; for the tests and screenshots, Python packages through pip into `.venv`
# (Debian's own Python refuses system-wide pip installs, PEP 668). Prints nothing when everything is
# already there.
#   scripts/install-deps.sh run|test|bench|screenshots
set -euo pipefail

purpose=${1:-test}
apt_packages=(libsqlite3-dev libsystemd-dev libjs-bootstrap5 libjs-chart.js pkg-config)
pip_packages=()
case "$purpose" in
  run) ;;
  test | screenshots)
    # systemd-analyze (package systemd) verifies the unit file in the test suite.
    apt_packages+=(sqlite3 systemd)
    # The store suites run against PostgreSQL too, on a throw-away cluster (scripts/pg-scratch.sh).
    [ "$purpose" = test ] && apt_packages+=(postgresql)
    # The console's browser tests and the screenshots drive Debian's headless Chromium through selenium.
    apt_packages+=(chromium chromium-driver)
    python3 -c 'import ensurepip, venv' 2>/dev/null || apt_packages+=(python3-venv)
    # schemathesis checks the admin API against its OpenAPI document (Tests/e2e/test_admin_api.py).
    pip_packages+=(openai pytest pyyaml schemathesis selenium websockets)
    # Without a CJK font the Chinese screenshots would show empty boxes.
    [ "$purpose" = screenshots ] && apt_packages+=(fonts-noto-cjk)
    ;;
  # The single-host benchmark runs on SQLite and on a throw-away PostgreSQL cluster (scripts/pg-scratch.sh);
  # bench/usage_instructions.sh counts instructions with valgrind and builds a small preload with gcc.
  bench) apt_packages+=(wrk nginx-light sqlite3 postgresql valgrind gcc binutils curl) ;;
  *) echo "install-deps: unknown purpose '$purpose' (run, test, bench or screenshots)" >&2; exit 2 ;;
esac

missing=()
for package in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "install-deps: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ((${#pip_packages[@]})); then
  # A venv that still sees packages installed system-wide, so nothing is fetched that is already there.
  venv=.venv
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv --system-site-packages "$venv"
  fi
  missing_pip=()
  for package in "${pip_packages[@]}"; do
    module=$package
    [ "$package" = pyyaml ] && module=yaml
    "$venv/bin/python" -c "import $module" 2>/dev/null || missing_pip+=("$package")
  done
  if ((${#missing_pip[@]})); then
    echo "install-deps: pip installing ${missing_pip[*]} into $venv"
    "$venv/bin/python" -m pip install -q "${missing_pip[@]}"
  fi
fi
