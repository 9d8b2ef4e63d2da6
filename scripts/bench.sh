#!/bin/sh
# make bench: runs the benchmarks and prints one table row per result.
# Live-view figures come from real processes (camd, headless Chromium,
# pion viewers) on loopback; see docs/benchmarks.md for what each means.
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh

raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
run() { go test -run '^$' "$@" 2>&1 | tee -a "$raw" | grep -E '^(Benchmark|FAIL|panic)' >&2 || true; }

echo "running unit benchmarks..." >&2
run -bench . -benchmem ./media/ ./media/h264/ ./media/synthetic/... ./media/whep/ ./device/
echo "running time to first frame (20 samples each)..." >&2
run -bench TimeToFirstFrame -benchtime 20x -timeout 30m ./e2e/
echo "running fan-out (1, 10, 50, 100 viewers, 10 s each)..." >&2
run -bench FanOut -benchtime 1x -timeout 30m ./e2e/

echo
awk '
/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
	row = ""
	for (i = 3; i + 1 <= NF; i += 2) {
		if ($(i+1) == "ns/op" && $i == 0) continue
		row = row sprintf("  %s %s", $i, $(i+1))
	}
	printf "%-48s%s\n", name, row
}
/^(FAIL|panic)/ { failed = 1 }
END { if (failed) { print "\nsome benchmarks FAILED; see the output above"; exit 1 } }
' "$raw"
