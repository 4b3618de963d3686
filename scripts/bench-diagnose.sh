#!/usr/bin/env bash
# Time-to-diagnosis of a healthy lab account: this tree against a baseline
# commit, measured in the same run on the same lab, and their ratio.
#
#   scripts/bench-diagnose.sh [BASE [RUNS]]
#
# BASE defaults to the merge base with main (today's code; once main holds
# part of this branch, name the commit before it); RUNS (default
# 15) diagnoses per binary, interleaved old/new so that load on the machine
# hits both alike. Each diagnosis is `maillab diagnose --settings FILE
# --json` with the default timeouts against one lab (the catalog's healthy
# scenario, started from this tree: the customer's submission and IMAPS
# services, all working). The script prints the median
# and the spread of each, and new/old; the target of issue 11 is <= 1.5.
# Needs: go, git. Exits 1 when the ratio is over MAILLAB_BENCH_MAX (default
# 1.5).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
base="${1:-$(git merge-base HEAD main)}"
runs="${2:-15}"
max="${MAILLAB_BENCH_MAX:-1.5}"

work="$(mktemp -d)"
lab_pid=""
cleanup() {
	if [[ -n "$lab_pid" ]]; then
		kill -INT "$lab_pid" 2>/dev/null || true
		wait "$lab_pid" 2>/dev/null || true
	fi
	git -C "$repo" worktree remove --force "$work/base" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

echo "bench-diagnose: baseline $(git rev-parse --short "$base"), this tree $(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes'), $runs runs each"
git worktree add --quiet --detach "$work/base" "$base"
(cd "$work/base" && go build -o "$work/maillab-old" ./cmd/maillab)
go build -o "$work/maillab-new" ./cmd/maillab

"$work/maillab-new" scenario healthy --dir "$work/lab" --settings-out "$work/settings.json" >/dev/null 2>&1 &
lab_pid=$!
for _ in $(seq 1 300); do
	[[ -s "$work/settings.json" ]] && break
	sleep 0.1
done
[[ -s "$work/settings.json" ]] || { echo "bench-diagnose: the lab wrote no settings" >&2; exit 2; }

# one BIN prints the wall time of one diagnosis in milliseconds; a run that
# is not HEALTHY fails the benchmark (it would time something else).
one() {
	local bin="$1" start end out
	start=$(date +%s%N)
	if ! out="$("$bin" diagnose --settings "$work/settings.json" --json 2>&1)"; then
		echo "bench-diagnose: $bin did not diagnose the healthy lab as HEALTHY:" >&2
		echo "$out" | head -20 >&2
		exit 2
	fi
	end=$(date +%s%N)
	echo $(((end - start) / 1000000))
}

old=() new=()
one "$work/maillab-old" >/dev/null # warm-up: caches, first connections
one "$work/maillab-new" >/dev/null
for _ in $(seq 1 "$runs"); do
	old+=("$(one "$work/maillab-old")")
	new+=("$(one "$work/maillab-new")")
done

stats() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {printf "%d %d %d", v[int((NR+1)/2)], v[1], v[NR]}'; }
read -r om omin omax <<<"$(stats "${old[@]}")"
read -r nm nmin nmax <<<"$(stats "${new[@]}")"
ratio=$(awk -v n="$nm" -v o="$om" 'BEGIN {printf "%.2f", n / o}')
echo "baseline  median ${om} ms (min ${omin}, max ${omax})"
echo "this tree median ${nm} ms (min ${nmin}, max ${nmax})"
echo "ratio new/old: ${ratio} (target <= ${max})"
awk -v r="$ratio" -v m="$max" 'BEGIN {exit !(r <= m)}'
