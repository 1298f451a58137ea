#!/usr/bin/env bash
# Sets up and runs every check: a virtual environment with the project and its test tools,
# Debian's Chromium for the browser tests and Dovecot for the e-mail tests, then ruff, mypy
# and pytest.
# PostgreSQL tests use GATEWAY_TEST_POSTGRES_URL (default postgres@127.0.0.1:5432/test).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "tests/run.sh: installing Debian's chromium for the browser tests" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "tests/run.sh: chromium is missing; run: sudo apt-get install chromium" >&2
  fi
fi

# Debian's Dovecot: the e-mail channel's tests start a throw-away IMAP server of their own.
if ! command -v dovecot >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "tests/run.sh: installing Debian's dovecot-imapd for the e-mail tests" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null
  else
    echo "tests/run.sh: dovecot is missing; run: sudo apt-get install dovecot-imapd" >&2
  fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# Machine translation: argostranslate needs torch (through stanza). torch==2.13.0 is a CPU build
# these machines keep on disk; a plain `torch` requirement would pull gigabytes of CUDA.
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e '.[test,translation]'

# axe-core (npm registry) for the accessibility checks of the secretariat's pages.
if [ ! -f .cache/axe-core/node_modules/axe-core/axe.min.js ]; then
  if command -v npm >/dev/null 2>&1; then
    npm install --prefix .cache/axe-core --no-audit --no-fund --silent axe-core@4
  else
    echo "tests/run.sh: npm is missing; the accessibility checks need axe-core" >&2
  fi
fi

.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
