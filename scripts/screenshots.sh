#!/usr/bin/env bash
# Regenerates the console's screenshots in docs/screenshots/: the scenario
# board, a class board, a lab view with its transcript, a trainee's ticket
# and the debrief, each at 1280 and 375 px wide (console-PAGE-WIDTH.png).
# It runs TestScreenshots of e2e/console in headless Chromium (Debian
# package chromium; curl too), which also fails on a page that scrolls
# horizontally at either width.
#
# Usage: scripts/screenshots.sh [DIR]   (default docs/screenshots)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dir="$(realpath -m "${1:-docs/screenshots}")"
mkdir -p "$dir"
MAILLAB_SCREENSHOTS="$dir" go test -tags e2e -count=1 -run '^TestScreenshots$' -v ./e2e/console/
ls -l "$dir"/console-*.png
