#!/usr/bin/env bash
# Open-data decryption, wechat_auth against silenceper/wechat's
# miniprogram/encryptor, on WeChat's published 400-byte user-info vector.
# wechat_auth's BenchmarkDecryptUserInfo (root package: decryptOpenData +
# checkOwner, every check the module makes) and silenceper's (bench/compare,
# its own module) run in alternating rounds; prints ns/op and allocs/op of
# each and the median of the per-round time ratios wechat_auth/silenceper.
#
#   bench/compare.sh               9 rounds of 1 s each
#   ROUNDS=15 BENCHTIME=2s bench/compare.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-9}
BENCHTIME=${BENCHTIME:-1s}
RUN="$RESULTS/compare"
rm -rf "$RUN" && mkdir -p "$RUN"

(cd "$ROOT" && go test -c -o "$RUN/ours.test" .)
(cd "$ROOT/bench/compare" && go test -c -o "$RUN/silenceper.test" .)

# bench BINARY: prints "ns_per_op allocs_per_op" of one run.
bench() {
	local out
	out=$("$1" -test.run '^$' -test.bench '^BenchmarkDecryptUserInfo$' -test.benchmem -test.benchtime "$BENCHTIME" 2>/dev/null)
	echo "$out" >>"$RUN/$(basename "$1" .test).log"
	echo "$out" | awk '/^BenchmarkDecryptUserInfo/ { for (i = 1; i <= NF; i++) { if ($(i+1) == "ns/op") ns = $i; if ($(i+1) == "allocs/op") al = $i } print ns, al }'
}

printf '%-6s %14s %14s %8s\n' round ours_ns/op silenceper_ns/op ratio
: >"$RUN/rounds.txt"
for i in $(seq 1 "$ROUNDS"); do
	if [ $((i % 2)) = 1 ]; then
		read -r ours ours_allocs < <(bench "$RUN/ours.test")
		read -r theirs theirs_allocs < <(bench "$RUN/silenceper.test")
	else
		read -r theirs theirs_allocs < <(bench "$RUN/silenceper.test")
		read -r ours ours_allocs < <(bench "$RUN/ours.test")
	fi
	ratio=$(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%.3f", a / b }')
	printf '%-6s %14s %14s %8s\n' "$i" "$ours" "$theirs" "$ratio"
	echo "$ours $theirs $ratio" >>"$RUN/rounds.txt"
done
med() { awk -v c="$1" '{ print $c }' "$RUN/rounds.txt" | median; }
printf '%-6s %14s %14s %8s\n' median "$(med 1)" "$(med 2)" "$(med 3)"
echo "allocs/op: wechat_auth $ours_allocs, silenceper $theirs_allocs"
echo "median of per-round ratios wechat_auth/silenceper: $(med 3) (target: <= 1, aim 0.6)"
