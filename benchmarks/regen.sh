#!/bin/sh
# regen.sh measures every group once with the current code and puts the
# figures into benchmarks/README.md (between the results markers) and
# benchmarks/results/ (JSON report, text table, SVG charts), so that every
# figure in the README comes from one run, named by its date, commit and
# machine.
#
# Usage (from anywhere in the repository):
#
#	benchmarks/regen.sh                      # the README's run
#	BENCH_DEVICES=1000 BENCH_ROTATIONS=5 benchmarks/regen.sh
#
# Environment: BENCH_GROUPS (default every group), BENCH_DEVICES
# (1000,10000), BENCH_ROTATIONS (5), BENCH_ATTACH_OPS (10000), BENCH_EXTRA
# (more e4c2-bench flags). (Not GROUPS: bash reserves it.)
# Commit the code first: the run names the commit it measured, and marks
# it "-dirty" when the tree has uncommitted changes.
set -eu

cd "$(dirname "$0")/.."
out=benchmarks/results
readme=benchmarks/README.md
groups=${BENCH_GROUPS:-suites,store,fanout,attach,memory}
devices=${BENCH_DEVICES:-1000,10000}
rotations=${BENCH_ROTATIONS:-5}
attach_ops=${BENCH_ATTACH_OPS:-10000}

rev=$(git rev-parse --short=12 HEAD)
if [ -n "$(git status --porcelain -- . ':!benchmarks/results' ':!benchmarks/README.md')" ]; then
	rev="$rev-dirty"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/e4c2-bench" ./benchmarks/cmd/e4c2-bench

if ! [ -x /usr/sbin/mosquitto ]; then
	echo "regen.sh: mosquitto is not installed (apt-get install mosquitto): its rows will be missing" >&2
fi

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$out"
rm -f "$out"/*.svg
# The runner fails (exit 1) when a group failed; the tables then say which,
# and the README must say it too, so go on.
set +e
"$tmp/e4c2-bench" --quiet --groups "$groups" --devices "$devices" --rotations "$rotations" \
	--attach-ops "$attach_ops" ${BENCH_EXTRA:-} \
	--out "$out/results.json" --charts "$out" --markdown "$tmp/tables.md" --revision "$rev" \
	>"$out/table.txt"
status=$?
set -e
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

{
	echo "<!-- results:begin (written by benchmarks/regen.sh; do not edit by hand) -->"
	echo
	echo "\`BENCH_GROUPS=$groups BENCH_DEVICES=$devices BENCH_ROTATIONS=$rotations BENCH_ATTACH_OPS=$attach_ops benchmarks/regen.sh\`"
	echo "(exit status $status). Machine:"
	echo
	echo '```'
	echo "$ nproc; lscpu | grep 'Model name'; free -h | head -2; uname -sr; go version"
	nproc
	lscpu 2>/dev/null | grep 'Model name' || true
	free -h | head -2
	uname -sr
	go version
	echo "load average (1, 5, 15 min) before the run: $load_before, after: $load_after"
	echo '```'
	echo
	cat "$tmp/tables.md"
	echo
	for svg in "$out"/*.svg; do
		[ -e "$svg" ] || continue
		name=$(basename "$svg" .svg)
		echo "![$name](results/$name.svg)"
	done
	echo
	echo "<!-- results:end -->"
} >"$tmp/results.md"

# Replace everything between the markers (inclusive) with the new block.
awk -v block="$tmp/results.md" '
	/^<!-- results:begin/ { while ((getline line < block) > 0) print line; skip = 1; next }
	/^<!-- results:end -->/ { skip = 0; next }
	!skip { print }
' "$readme" >"$tmp/README.md"
if ! grep -q '^<!-- results:begin' "$readme"; then
	echo "regen.sh: $readme has no results markers" >&2
	exit 1
fi
cp "$tmp/README.md" "$readme"
echo "regen.sh: $readme and $out/ updated from run $rev (exit status $status)" >&2
exit "$status"
