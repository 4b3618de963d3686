#!/bin/sh
# store-ingest.sh [N] — delivers N messages (default 30000) into one
# Maildir INBOX of a --store and prints the ingest rate of the first and
# the last 1,000 messages and their ratio (last/first; 1.0 means the
# 30,000th message goes in as fast as the first), and last/empty_same_time,
# the last 1,000 against deliveries to an empty mailbox interleaved with
# them (robust against a disk shared with other work). Every delivery is
# durable (fsync of the message, of new/ and of the uidlist journal), so
# the absolute rate is the disk's fsync rate; the ratio is what the store
# controls. See docs/store.md.
set -eu
cd "$(dirname "$0")/.."
MAILSTORE_INGEST_N="${1:-30000}" exec go test -run '^$' -bench '^BenchmarkIngest$' -benchtime=1x -timeout 2h ./servers/mailstore/
