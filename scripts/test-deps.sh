#!/usr/bin/env bash
# Install what the integration tests need besides pip packages: Azurite (npm) into a git-ignored folder.
# Idempotent and quick when already installed. Usage: scripts/test-deps.sh
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
azurite_dir="$repo/.cache/azurite"
azurite_version="3.35.0"  # Node 20 gets 3.35.x; 3.36+ needs Node 21+.

if [ -x "$azurite_dir/node_modules/.bin/azurite-blob" ] \
    && grep -q "\"version\": \"$azurite_version\"" "$azurite_dir/node_modules/azurite/package.json" 2>/dev/null; then
    echo "azurite $azurite_version already installed in $azurite_dir"
else
    if ! command -v npm >/dev/null 2>&1; then
        echo "npm is required to install Azurite (apt-get install -y nodejs npm)" >&2
        exit 1
    fi
    mkdir -p "$azurite_dir"
    npm install --no-save --no-audit --no-fund --loglevel=error --prefix "$azurite_dir" "azurite@$azurite_version"
    echo "azurite $azurite_version installed in $azurite_dir"
fi

# openapi-python-client, for the generated-client test, in a virtual environment of its own: its pins
# (typer<0.28) clash with skuport's.
client_dir="$repo/.cache/openapi-client"
client_version="0.29.1"
if "$client_dir/bin/openapi-python-client" --version 2>/dev/null | grep -q "$client_version"; then
    echo "openapi-python-client $client_version already installed in $client_dir"
else
    rm -rf "$client_dir"
    "${PYTHON:-python3}" -m venv "$client_dir"
    "$client_dir/bin/python" -m pip install --quiet "openapi-python-client==$client_version" "ruff==0.17.6"
    echo "openapi-python-client $client_version installed in $client_dir"
fi

# Headless Chromium for the console's browser tests: Debian's package (Playwright drives it with
# executable_path; `playwright install` would download a browser and is never run).
if [ -x /usr/bin/chromium ]; then
    echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null | head -1)"
else
    sudo_cmd=""
    if [ "$(id -u)" != "0" ]; then sudo_cmd="sudo"; fi
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends chromium >/dev/null
    echo "chromium installed: $(/usr/bin/chromium --version 2>/dev/null | head -1)"
fi

# axe-core for the console's accessibility checks, injected into each page by the browser tests.
axe_dir="$repo/.cache/axe"
axe_version="4.14.1"
if grep -q "\"version\": \"$axe_version\"" "$axe_dir/node_modules/axe-core/package.json" 2>/dev/null; then
    echo "axe-core $axe_version already installed in $axe_dir"
else
    mkdir -p "$axe_dir"
    npm install --no-save --no-audit --no-fund --loglevel=error --prefix "$axe_dir" "axe-core@$axe_version"
    echo "axe-core $axe_version installed in $axe_dir"
fi
