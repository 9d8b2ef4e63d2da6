#!/bin/sh
# make fuzz: runs every fuzz target of the module for FUZZTIME (default
# 10s) each, one `go test -fuzz` per target, since -fuzz takes one target
# of one package at a time. A target starts from its seeds (f.Add and the
# package's testdata/fuzz/FuzzName/); an input that fails is written there
# too: commit it with the fix, and it stays a regression test of
# `go test`.
set -eu
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-10s}

# Every "func FuzzName(" at the start of a line of a test file, as
# package-directory:FuzzName.
targets=$(grep -rE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . |
	sed -E 's|^(.*)/[^/]*:func (Fuzz[A-Za-z0-9_]*)\(.*|\1:\2|' | sort)
[ -n "$targets" ] || { echo "fuzz: no fuzz targets found" >&2; exit 1; }

# fuzz.sh --check-corpus (make lint): every target keeps a seed corpus.
if [ "${1:-}" = "--check-corpus" ]; then
	missing=0
	for t in $targets; do
		[ -d "${t%%:*}/testdata/fuzz/${t#*:}" ] && continue
		echo "fuzz: ${t#*:} has no seed corpus in ${t%%:*}/testdata/fuzz/${t#*:}" >&2
		missing=1
	done
	exit $missing
fi
for t in $targets; do
	dir=${t%%:*}
	name=${t#*:}
	echo "fuzz: $dir $name for $fuzztime" >&2
	[ -d "$dir/testdata/fuzz/$name" ] || echo "fuzz: warning: $name has no seed corpus in $dir/testdata/fuzz/$name" >&2
	go test -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" "$dir"
done
