#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: system packages, a virtual environment with
# packloop and its dev extras, and the Node.js client used by the wire tests.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

need_apt=()
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v amtool >/dev/null 2>&1 || need_apt+=(prometheus-alertmanager)
command -v docker-compose >/dev/null 2>&1 || need_apt+=(docker-compose)
# Debian keeps initdb under /usr/lib/postgresql/*/bin, off PATH.
command -v initdb >/dev/null 2>&1 || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null \
  || need_apt+=(postgresql)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian packages: ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    # The Debian packages start Prometheus/Alertmanager services; packloop's tests run their own.
    for svc in prometheus prometheus-alertmanager postgresql; do
      (service "$svc" stop || systemctl stop "$svc") >/dev/null 2>&1 || true
    done
    # without an init system the packages' daemons were started directly: stop those only
    # (they run as the package's user), never a Prometheus someone else runs here
    pkill -x -u prometheus prometheus >/dev/null 2>&1 || true
    pkill -x -u prometheus prometheus-alertmanager >/dev/null 2>&1 || true
  else
    echo "setup: please install: ${need_apt[*]} (apt-get as root)" >&2
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
"$VENV/bin/python" -m pip install -q -e '.[dev,postgres]'

if command -v npm >/dev/null 2>&1; then
  (cd tests/js && npm ci --no-audit --no-fund --silent)
fi
echo "setup: ready ($("$VENV/bin/python" --version), $VENV)"
