#!/usr/bin/env bash
# Sets up lingma-proxy in ./.venv:   ./install.sh [--dev]
#
# Idempotent: a second run only lets pip confirm the requirements are met. --dev adds the test tools.
# Chromium and chromedriver (for the Selenium login) are installed with apt-get when missing and
# possible; otherwise the proxy still works, and .venv/browser-status says why there is no browser.
# --dev also installs nginx and HAProxy the same way, for the load balancer tests (skipped without them).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

DEV=0
for arg in "$@"; do
  case "$arg" in
    --dev) DEV=1 ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option: $arg (usage: ./install.sh [--dev])" >&2; exit 2 ;;
  esac
done

STEP="starting"
trap 'echo "install.sh: FAILED while ${STEP} (see the messages above)" >&2' ERR
step() { STEP="$1"; echo "==> ${1^}"; }

python_ok() {  # the interpreter runs and is Python >= 3.11
  "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1
}

step "looking for Python 3.11 or newer"
PYTHON=""
for candidate in python3.11 python3.12 python3.13 python3; do
  if command -v "$candidate" >/dev/null 2>&1 && python_ok "$candidate"; then
    PYTHON="$(command -v "$candidate")"
    break
  fi
done
if [[ -z "$PYTHON" ]]; then
  echo "install.sh: lingma-proxy needs Python 3.11 or newer; none of python3.11, python3.12, python3.13, python3 is." >&2
  exit 1
fi
echo "    $("$PYTHON" --version) at $PYTHON"

if [[ -d .venv ]] && ! python_ok .venv/bin/python; then
  step "replacing .venv, whose Python is missing or older than 3.11"
  rm -rf .venv
fi
if [[ ! -d .venv ]]; then
  step "creating .venv"
  if ! "$PYTHON" -m venv .venv; then
    rm -rf .venv
    echo "install.sh: '$PYTHON -m venv' failed; on Debian/Ubuntu install the python3-venv package." >&2
    exit 1
  fi
fi

step "installing Python requirements"
REQUIREMENTS=(-r requirements.txt)
if [[ "$DEV" == 1 ]]; then REQUIREMENTS+=(-r requirements-dev.txt); fi
# No --upgrade: pip leaves anything that already satisfies the requirements alone.
.venv/bin/python -m pip install --quiet --disable-pip-version-check "${REQUIREMENTS[@]}"

# --- browser for the Selenium login: best effort, never fatal ---------------------------------

find_browser() {
  BROWSER="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
  DRIVER="$(command -v chromedriver || true)"
  [[ -n "$BROWSER" && -n "$DRIVER" ]]
}

apt_install() {  # apt_install PACKAGE...: prints the reason and returns non-zero when it cannot
  local sudo=()
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "no apt-get on this system"; return 1
  fi
  if [[ "$(id -u)" != 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
      sudo=(sudo -n)
    else
      echo "not root and no passwordless sudo"; return 1
    fi
  fi
  local apt_log=.venv/apt.log
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$apt_log" 2>&1; then
    tail -n 5 "$apt_log" >&2; echo "apt-get update failed (details in $apt_log)"; return 1
  fi
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      "$@" >>"$apt_log" 2>&1; then
    tail -n 5 "$apt_log" >&2; echo "apt-get install $* failed (details in $apt_log)"; return 1
  fi
}

step "checking for Chromium and chromedriver (Selenium login)"
STATUS_FILE=.venv/browser-status
if find_browser; then
  echo "    found $BROWSER and $DRIVER"
  echo "available" >"$STATUS_FILE"
else
  echo "    missing; trying to install them with apt-get"
  if reason="$(apt_install chromium chromium-driver)" && find_browser; then
    echo "    installed $BROWSER and $DRIVER"
    echo "available" >"$STATUS_FILE"
  else
    reason="${reason:-installed, but chromium or chromedriver is still not on PATH}"
    echo "    NOTE: no browser for the Selenium login: $reason."
    echo "    The proxy works without it (attach mode, session bundles, 'login --show-browser'"
    echo "    on another machine); the automatic-login tests will be skipped."
    echo "unavailable: $reason" >"$STATUS_FILE"
  fi
fi

# --- nginx and HAProxy for the load balancer tests (--dev): best effort, never fatal ---------

# Root's PATH has /usr/sbin, where Debian puts both; the tests look for them on PATH too.
missing_balancers() {
  MISSING=()
  local name
  for name in nginx haproxy; do
    command -v "$name" >/dev/null 2>&1 || MISSING+=("$name")
  done
  [[ ${#MISSING[@]} == 0 ]]
}

if [[ "$DEV" == 1 ]]; then
  step "checking for nginx and HAProxy (load balancer tests)"
  if missing_balancers; then
    echo "    found $(command -v nginx) and $(command -v haproxy)"
  else
    echo "    missing ${MISSING[*]}; trying to install with apt-get"
    if reason="$(apt_install "${MISSING[@]}")" && missing_balancers; then
      echo "    installed $(nginx -v 2>&1 | cut -d" " -f3) and $(haproxy -v | head -n 1 | cut -d" " -f1-3)"
    else
      reason="${reason:-installed, but not on PATH: ${MISSING[*]}}"
      echo "    NOTE: the load balancer tests will be skipped: $reason."
    fi
  fi
fi

STEP="finishing"
echo "==> Done. Start with: .venv/bin/python lingma_proxy.py"
if [[ "$DEV" == 1 ]]; then echo "    Run the tests with: .venv/bin/python -m pytest -q"; fi
