#!/usr/bin/env bash
# System packages the test suite needs beyond pip: Chromium, for the rating-page test
# (tests/test_ab_page.py drives partner-ab's HTML page headless). Idempotent and quiet: does
# nothing when a Chromium is already installed. Debian/Ubuntu (apt); needs root or passwordless sudo.
set -euo pipefail
for exe in chromium chromium-browser google-chrome; do
    if command -v "$exe" >/dev/null 2>&1; then exit 0; fi
done
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "ci-setup: Chromium is missing and installing it needs root (apt-get install chromium)" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
echo "ci-setup: installing chromium (apt) ..."
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq chromium >/dev/null
command -v chromium >/dev/null && echo "ci-setup: $(chromium --version 2>/dev/null | head -1)"
