#!/usr/bin/env bash
# castra's two entry points:
#   ./run.sh demo [args...]   the end-to-end demo (examples/demo.py)
#   ./run.sh test [args...]   the test suite (arguments go to pytest)
#
# It does its own setup on a fresh Debian machine (root, Python 3.11): Debian's chromium
# (browsers are never downloaded by Playwright), a .venv, and `pip install -e '.[dev]'`,
# repeated only when pyproject.toml changes.
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

PYTHON="${PYTHON:-python3.11}"
VENV=.venv
STAMP="$VENV/.castra-installed"

log() { printf 'run.sh: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

ensure_system_packages() {
    local missing=()
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    # Debian splits venv/ensurepip out of the interpreter package.
    if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
        missing+=("$(basename "$PYTHON")-venv")
    fi
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing ${missing[*]} with apt-get"
        as_root apt-get update -q
        as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
}

ensure_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating $VENV with $PYTHON"
        rm -rf "$VENV"
        "$PYTHON" -m venv "$VENV"
    fi
    local wanted
    wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    if [ "$(cat "$STAMP" 2>/dev/null)" != "$wanted" ]; then
        log "installing castra[dev] into $VENV (pyproject.toml changed or first run)"
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
        "$VENV/bin/python" -m pip install --quiet -e '.[dev]'
        echo "$wanted" >"$STAMP"
    fi
}

usage() {
    echo "usage: $0 demo [args...] | test [pytest args...]" >&2
    exit 2
}

command="${1:-}"
[ "$command" = demo ] || [ "$command" = test ] || usage
shift

ensure_system_packages
ensure_venv

case "$command" in
demo)
    exec "$VENV/bin/python" examples/demo.py "$@"
    ;;
test)
    status=0
    "$VENV/bin/python" -m pytest "$@" || status=$?
    if [ "$status" -eq 5 ]; then
        log "pytest collected no tests: that is a failure"
        exit 1
    fi
    exit "$status"
    ;;
esac
