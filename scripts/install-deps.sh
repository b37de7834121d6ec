#!/usr/bin/env bash
# Installs what `make run`, `make test` and `make bench` need and is missing: Debian packages through
# apt-get, Python packages through pip. Prints nothing when everything is already there.
#   scripts/install-deps.sh run|test|bench
set -euo pipefail

purpose=${1:-test}
apt_packages=(libsqlite3-dev libsystemd-dev libjs-bootstrap5 libjs-chart.js pkg-config)
pip_packages=()
case "$purpose" in
  run) ;;
  test) apt_packages+=(sqlite3); pip_packages+=(openai pytest pyyaml) ;;
  bench) apt_packages+=(wrk nginx-light sqlite3) ;;
  *) echo "install-deps: unknown purpose '$purpose' (run, test or bench)" >&2; exit 2 ;;
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
  missing_pip=()
  for package in "${pip_packages[@]}"; do
    module=$package
    [ "$package" = pyyaml ] && module=yaml
    python3 -c "import $module" 2>/dev/null || missing_pip+=("$package")
  done
  if ((${#missing_pip[@]})); then
    echo "install-deps: pip installing ${missing_pip[*]}"
    python3 -m pip install -q "${missing_pip[@]}"
  fi
fi
