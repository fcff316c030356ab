#!/usr/bin/env bash
# Installs what bench/run needs, idempotently: bash bench/setup.sh COMPONENT...
#
#   node          npm ws + sockjs@0.3.24 into bench/node_modules (load generator, sockjs-node)
#   cpython       bench/.venv-cpython: Twisted + Autobahn (raw floor)
#   ours-cpython  cpython + `pip install -e` of this repository
#   pypy          Debian pypy3 (apt, only if missing) + bench/.venv-pypy: Twisted + Autobahn
#   ours-pypy     pypy + `pip install -e` of this repository
#   tornado       bench/.venv-tornado: sockjs-tornado 1.0.7
#   aio           bench/.venv-aio: aio-libs sockjs 0.13 + aiohttp
#
# A component whose install fails leaves bench/.out/setup-failed-COMPONENT with the reason
# (bench.py reports it); a component already installed from the same requirements is left alone.
set -u
BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH")
OUT=$BENCH/.out
mkdir -p "$OUT"
status=0

say() { echo "[setup] $*" >&2; }
failed() {
  say "$1: FAILED: $2"
  echo "$2" >"$OUT/setup-failed-$1"
  status=1
}
succeeded() { rm -f "$OUT/setup-failed-$1"; }

# A venv is rebuilt only when its requirements (or the repository's packaging files,
# for the editable install) change: their hash is kept in the venv.
fingerprint() { cat "$@" 2>/dev/null | sha256sum | cut -d' ' -f1; }

venv() { # venv NAME INTERPRETER REQUIREMENTS
  local name=$1 req=$3 dir=$BENCH/.venv-$1
  local interp want
  # The real executable, not a shim (pyenv's python3 is one in a shell, not under bench.py).
  interp=$("$2" -c 'import os, sys; print(os.path.realpath(sys.executable))') || return 1
  want=$(fingerprint "$req" <("$interp" -c 'import sys; print(sys.executable, sys.version)'))
  if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.bench-stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  say "$name: creating $dir"
  rm -rf "$dir"
  "$interp" -m venv "$dir" || return 1
  "$dir/bin/python" -m pip install -q --disable-pip-version-check -r "$req" 2>&1 |
    grep -v "is ignored: it is neither a file nor a directory" >&2
  [ "${PIPESTATUS[0]}" = 0 ] || return 1
  echo "$want" >"$dir/.bench-stamp"
}

ours() { # ours NAME: pip install -e the repository into bench/.venv-NAME
  local name=$1 dir=$BENCH/.venv-$1
  local files=("$ROOT/pyproject.toml" "$ROOT/setup.cfg" "$ROOT/setup.py")
  if ! [ -f "$ROOT/pyproject.toml" ] && ! [ -f "$ROOT/setup.py" ]; then
    echo "no pyproject.toml or setup.py in $ROOT"
    return 1
  fi
  local want
  want=$(fingerprint "${files[@]}" "$dir/.bench-stamp")
  if [ "$(cat "$dir/.bench-ours-stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  say "$name: pip install -e $ROOT"
  local extra=()
  [ "$name" = pypy ] && extra=(--only-binary cryptography)
  if ! "$dir/bin/python" -m pip install -q --disable-pip-version-check "${extra[@]}" -e "$ROOT" >"$OUT/pip-ours-$name.log" 2>&1; then
    # Debian's PyPy is Python 3.9: if only the declared requires-python stops it, try anyway.
    if grep -q "requires a different Python" "$OUT/pip-ours-$name.log" &&
      "$dir/bin/python" -m pip install -q --disable-pip-version-check "${extra[@]}" \
        --ignore-requires-python -e "$ROOT" >>"$OUT/pip-ours-$name.log" 2>&1; then
      say "$name: installed with --ignore-requires-python"
    else
      grep -v "is ignored: it is neither" "$OUT/pip-ours-$name.log" | tail -5 >&2
      echo "pip install -e failed (see bench/.out/pip-ours-$name.log)"
      return 1
    fi
  fi
  echo "$want" >"$dir/.bench-ours-stamp"
}

want_component() {
  local c
  for c in "${COMPONENTS[@]}"; do [ "$c" = "$1" ] && return 0; done
  return 1
}

COMPONENTS=("$@")
[ ${#COMPONENTS[@]} -gt 0 ] || COMPONENTS=(node cpython ours-cpython pypy ours-pypy tornado aio)
want_component ours-cpython && COMPONENTS+=(cpython)
want_component ours-pypy && COMPONENTS+=(pypy)

if want_component node; then
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    say "node: installing Debian nodejs + npm"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; } >&2
  fi
  have() { node -p "require('$BENCH/node_modules/$1/package.json').version" 2>/dev/null; }
  if [ "$(have ws)" != "$(node -p "require('$BENCH/package.json').dependencies.ws")" ] ||
    [ "$(have sockjs)" != "0.3.24" ]; then
    say "node: npm install (ws, sockjs 0.3.24)"
    (cd "$BENCH" && npm install --no-audit --no-fund --no-package-lock --loglevel=error >&2)
  fi
  if [ "$(have sockjs)" = "0.3.24" ] && [ -n "$(have ws)" ]; then succeeded node; else failed node "npm install failed or node is missing"; fi
fi

if want_component cpython; then
  if venv cpython "$(command -v python3)" "$BENCH/requirements/cpython.txt"; then succeeded cpython; else failed cpython "venv or pip install failed"; fi
fi

if want_component pypy; then
  if ! command -v pypy3 >/dev/null; then
    say "pypy: installing Debian pypy3"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pypy3; } >&2
  fi
  if ! command -v pypy3 >/dev/null; then
    failed pypy "pypy3 is not installed and apt-get could not install it"
  elif venv pypy "$(command -v pypy3)" "$BENCH/requirements/pypy.txt"; then
    succeeded pypy
  else
    failed pypy "venv or pip install failed"
  fi
fi

for name in cpython pypy; do
  want_component "ours-$name" || continue
  if [ -f "$OUT/setup-failed-$name" ]; then
    failed "ours-$name" "$(cat "$OUT/setup-failed-$name")"
  elif why=$(ours "$name"); then
    # bench.py puts the repository on PYTHONPATH: Twisted finds plugins in twisted/plugins/
    # folders on sys.path, which an editable install's import hook does not add.
    if (cd / && PYTHONPATH="$ROOT" "$BENCH/.venv-$name/bin/python" -m twisted sockjs --help) >/dev/null 2>"$OUT/plugin-$name.log"; then
      succeeded "ours-$name"
    else
      failed "ours-$name" "\`python -m twisted sockjs --help\` fails: $(tail -1 "$OUT/plugin-$name.log")"
    fi
  else
    failed "ours-$name" "$why"
  fi
done

if want_component tornado; then
  if venv tornado "$(command -v python3)" "$BENCH/requirements/tornado.txt"; then succeeded tornado; else failed tornado "venv or pip install failed"; fi
fi
if want_component aio; then
  if venv aio "$(command -v python3)" "$BENCH/requirements/aio.txt"; then succeeded aio; else failed aio "venv or pip install failed"; fi
fi
exit $status
