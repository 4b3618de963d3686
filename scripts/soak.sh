#!/bin/sh
# soak.sh [--quick] [--scale F] [--rounds N] [--rss-wait D] — issue 12's
# "Measured" load against one lab:
# IMAPS sessions held open, messages through submission (STARTTLS + AUTH)
# and the relay port, slowloris SMTP connections and a file-descriptor
# exhaustion burst, side by side. Prints the figures and exits 1 when a
# target is missed (see docs/limits.md). Loopback only; needs prlimit
# (util-linux). --quick is a small run (well under a minute) that enforces
# the correctness targets only; the full run takes about three minutes
# plus up to three more for RSS to come back. --rounds N puts the load on
# the same lab N times (see docs/limits.md).
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/maillab" ./cmd/maillab
go build -o "$tmp/soak" ./scripts/soak
"$tmp/soak" --maillab "$tmp/maillab" "$@"
