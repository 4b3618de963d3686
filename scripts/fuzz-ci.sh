#!/usr/bin/env bash
# CI's short fuzzing pass: every fuzz target for $FUZZ_CI_TIME (default
# 3s) each, one after the other. A failure prints the failing input's path
# under testdata/fuzz (see scripts/fuzz-all.sh) and fails CI.
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/fuzz-all.sh" "${FUZZ_CI_TIME:-3s}"
