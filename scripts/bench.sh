#!/usr/bin/env bash
# Print the figures of docs/benchmarks.md, measured on this machine now,
# with the conditions they were measured under (CPUs, load, Go version).
#
#   scripts/bench.sh            # about a minute on an idle 2-core machine
#
# Figures from a loaded machine are not comparable with an idle one's: the
# load averages before and after the run are printed beside them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

load() { cut -d' ' -f1-3 /proc/loadavg; }
before="$(load)"
out="$(go test -run '^$' -bench . ${BENCHTIME:+-benchtime "$BENCHTIME"} -count 1 ./lab ./cmd/maillab ./verify 2>&1)" || {
	echo "$out" >&2
	exit 1
}
after="$(load)"

# metric BENCHMARK UNIT: the value a benchmark line reports in UNIT.
metric() {
	echo "$out" | awk -v b="^$1(-[0-9]+)?\$" -v u="$2" '$1 ~ b { for (i = 2; i < NF; i++) if ($(i+1) == u) { print $i; exit } }'
}
ms() { awk -v ns="$1" 'BEGIN { printf "%.2f ms", ns / 1e6 }'; }

echo "conditions: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), load average before $before, after $after, $(go version | cut -d' ' -f3)"
echo "| benchmark | target | measured |"
echo "| --- | --- | --- |"
echo "| lab start-to-ready (BenchmarkStart) | ≤ 20 ms | $(ms "$(metric BenchmarkStart ns/op)") |"
echo "| SMTP submission over STARTTLS with AUTH, 4 clients (BenchmarkSubmissionSTARTTLS) | — | $(metric BenchmarkSubmissionSTARTTLS msgs/s) msgs/s |"
echo "| RSS of an idle lab (BenchmarkIdleLabRSS) | ≤ 30 MB | $(metric BenchmarkIdleLabRSS RSS-MB) MB |"
echo "| maillab verify, whole catalog, bundled diagnoser, 1 s step timeout (BenchmarkCatalog) | ≤ 5 s | $(metric BenchmarkCatalog catalog-s) s |"
echo "| median time of a scenario not diagnosed by a timeout (same benchmark) | ≤ 50 ms | $(metric BenchmarkCatalog median-ms) ms |"
