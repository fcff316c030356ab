#!/usr/bin/env bash
# Installs what tests/test_browser.py needs, each piece only if it is missing, so that on a
# machine where everything is there this takes a second or two:
#   - Chromium, Debian's package (/usr/bin/chromium);
#   - Playwright for Python, in the active venv (it drives that Chromium; it never downloads
#     a browser of its own here);
#   - sockjs-client 1.6.1 and websocket-multiplex 0.1.0 from npm, in tests/browser/node_modules
#     (package-lock.json).
# Run it with the project's venv active (.ci/setup does).
set -euo pipefail
cd "$(dirname "$0")/.."

PLAYWRIGHT_VERSION=1.65.2
SOCKJS_CLIENT_VERSION=1.6.1
WEBSOCKET_MULTIPLEX_VERSION=0.1.0

python=python3
if [ -n "${VIRTUAL_ENV:-}" ]; then
  python="$VIRTUAL_ENV/bin/python"
elif command -v python >/dev/null 2>&1; then
  python=python
fi

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then
    as_root apt-get update -qq
    apt_updated=yes
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

if [ ! -x /usr/bin/chromium ]; then
  echo "install-browser: installing Chromium (Debian package chromium)"
  apt_install chromium
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "install-browser: installing Node.js and npm (Debian packages)"
  apt_install nodejs npm
fi

if ! "$python" -c 'import playwright.sync_api' >/dev/null 2>&1; then
  echo "install-browser: installing playwright==$PLAYWRIGHT_VERSION into $("$python" -c 'import sys; print(sys.prefix)')"
  "$python" -m pip install -q --disable-pip-version-check "playwright==$PLAYWRIGHT_VERSION"
fi

installed=$(node -p "require('./tests/browser/node_modules/sockjs-client/package.json').version" 2>/dev/null || true)
multiplex=$(node -p "require('./tests/browser/node_modules/websocket-multiplex/package.json').version" 2>/dev/null || true)
if [ "$installed" != "$SOCKJS_CLIENT_VERSION" ] || [ "$multiplex" != "$WEBSOCKET_MULTIPLEX_VERSION" ]; then
  echo "install-browser: installing sockjs-client $SOCKJS_CLIENT_VERSION and websocket-multiplex $WEBSOCKET_MULTIPLEX_VERSION (npm ci in tests/browser)"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
