#!/usr/bin/env bash
# Login throughput: wrk POSTs /wx/login, each with a new code, to a Caddy
# whose wechat_auth talks to a fake WeChat (bench/fakewechat, package
# wechattest) on loopback. Each login is a real code2session call over
# HTTP, a new session stored and a token signed.
#
#   bench/logins.sh                3 rounds of 10 s, 2 threads, 32 connections
#   ROUNDS=5 DURATION=20s bench/logins.sh
#   CADDY=./caddy bench/logins.sh  use this Caddy binary instead of building
#   STORE=redis bench/logins.sh    the sessions in a redis-server on loopback
#   STORE=both bench/logins.sh     memory and redis sites of one Caddy, in
#                                  alternating rounds: prints the median of
#                                  the per-round ratios redis / memory
#
# Every answer must be 200. Prints logins per second per round and their
# median; exits 1 when the median is under MIN_LOGINS (500), and with
# STORE=both also when the median ratio is under MIN_REDIS_RATIO (0.8).
# STORE=redis and both start their own redis-server (without persistence,
# so the disk does not take part) on a free port.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
MIN_LOGINS=${MIN_LOGINS:-500}
MIN_REDIS_RATIO=${MIN_REDIS_RATIO:-0.8}
STORE=${STORE:-memory}
case "$STORE" in
memory) STORES=(memory) ;;
redis) STORES=(redis) ;;
both) STORES=(memory redis) ;;
*) echo "STORE is memory, redis or both, not $STORE" >&2; exit 2 ;;
esac

need_wrk
build_caddy
build_cmd fakewechat

WX_PORT=$(free_port)
RUN="$RESULTS/logins"
rm -rf "$RUN" && mkdir -p "$RUN"

declare -A PORT
for s in "${STORES[@]}"; do
	PORT[$s]=$(free_port)
done
if [ "$STORE" != memory ]; then
	command -v redis-server >/dev/null 2>&1 || { echo "redis-server is needed: apt-get install redis-server" >&2; exit 1; }
	REDIS_PORT=$(free_port)
	mkdir -p "$RUN/redis"
	start_bg "$RUN/redis.log" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$RUN/redis"
	wait_port "$REDIS_PORT"
fi

# site STORE prints the site of one store.
site() {
	local store=""
	[ "$1" = redis ] && store=$'\t\tstore redis redis://127.0.0.1:'"$REDIS_PORT"$'\n'
	printf ':%s {\n\tbind 127.0.0.1\n\twechat_auth {\n\t\tapp_id wxbench000000001\n\t\tapp_secret bench-secret\n\t\tapi_base http://127.0.0.1:%s\n\t\tsigning_key bench-signing-key-0123456789abcdef\n%s\t}\n\trespond "ok"\n}\n' \
		"${PORT[$1]}" "$WX_PORT" "$store"
}
{
	caddy_globals
	for s in "${STORES[@]}"; do
		echo
		site "$s"
	done
} >"$RUN/Caddyfile"

start_bg "$RUN/fakewechat.log" "$RESULTS/fakewechat" -addr "127.0.0.1:$WX_PORT" -appid wxbench000000001 -secret bench-secret
start_bg "$RUN/caddy.log" "$RESULTS/caddy" run --config "$RUN/Caddyfile" --adapter caddyfile
CADDY_PID=${PIDS[-1]}
wait_port "$WX_PORT"
for s in "${STORES[@]}"; do
	wait_port "${PORT[$s]}"
	got=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d "code=check-$s" "http://127.0.0.1:${PORT[$s]}/wx/login")
	[ "$got" = 200 ] || { echo "a login ($s store) answered $got, want 200 (see $RUN/caddy.log)" >&2; exit 1; }
done

# cpu_ticks PID prints the process's utime+stime in clock ticks.
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}
TICK=$(getconf CLK_TCK)

# login_round STORE ROUND: one wrk run against STORE's site; prints its
# logins/s and Caddy's CPU µs per login. Codes carry the store and round,
# so each is new to the fake WeChat.
login_round() {
	local out line t0 t1
	t0=$(cpu_ticks "$CADDY_PID")
	out=$(BENCH_RUN="$1$2" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$ROOT/bench/login.lua" "http://127.0.0.1:${PORT[$1]}/wx/login" 2>&1)
	t1=$(cpu_ticks "$CADDY_PID")
	echo "$out" >>"$RUN/wrk-$1.log"
	line=$(echo "$out" | grep '^STATUS ') || { echo "wrk printed no STATUS line:" >&2; echo "$out" >&2; exit 1; }
	if [ "$(field 2xx "$line")" -ne "$(field requests "$line")" ] || [ "$(field errors "$line")" -ne 0 ]; then
		echo "round $2 ($1 store): expected every login to answer 200: $line" >&2
		exit 1
	fi
	awk -v rps="$(field rps "$line")" -v n="$(field requests "$line")" -v t=$((t1 - t0)) -v hz="$TICK" \
		'BEGIN { printf "%s %.0f\n", rps, t / hz * 1e6 / n }'
}

export BENCH_DIR="$ROOT/bench"
: >"$RUN/rounds.txt"
if [ "$STORE" != both ]; then
	printf '%-6s %12s %14s\n' round logins/s "µs CPU/login"
	for i in $(seq 0 "$ROUNDS"); do
		read -r rps cpu < <(login_round "$STORE" "$i")
		[ "$i" = 0 ] && continue # warm-up
		printf '%-6s %12s %14s\n' "$i" "$rps" "$cpu"
		echo "$rps" >>"$RUN/rounds.txt"
	done
	MED=$(median <"$RUN/rounds.txt")
	printf '%-6s %12s\n' median "$MED"
	echo "median logins per second ($STORE store): $MED (acceptance: >= $MIN_LOGINS)"
	awk -v r="$MED" -v m="$MIN_LOGINS" 'BEGIN { exit !(r >= m) }'
	exit
fi

# Alternating rounds: the store that goes first changes every round, so
# neither always runs right after the other warmed the machine up.
: >"$RUN/memory.txt" >"$RUN/redis.txt" >"$RUN/ratios.txt" >"$RUN/cpuratios.txt"
printf '%-6s %12s %12s %8s %14s %14s\n' round memory/s redis/s ratio "memory µs CPU" "redis µs CPU"
for i in $(seq 0 "$ROUNDS"); do
	if [ $((i % 2)) = 0 ]; then order=(memory redis); else order=(redis memory); fi
	declare -A RPS CPU
	for s in "${order[@]}"; do
		read -r "RPS[$s]" "CPU[$s]" < <(login_round "$s" "$i")
	done
	[ "$i" = 0 ] && continue # warm-up
	ratio=$(awk -v r="${RPS[redis]}" -v m="${RPS[memory]}" 'BEGIN { printf "%.3f", r / m }')
	printf '%-6s %12s %12s %8s %14s %14s\n' "$i" "${RPS[memory]}" "${RPS[redis]}" "$ratio" "${CPU[memory]}" "${CPU[redis]}"
	echo "${RPS[memory]}" >>"$RUN/memory.txt"
	echo "${RPS[redis]}" >>"$RUN/redis.txt"
	echo "$ratio" >>"$RUN/ratios.txt"
	awk -v r="${CPU[redis]}" -v m="${CPU[memory]}" 'BEGIN { printf "%.3f\n", r / m }' >>"$RUN/cpuratios.txt"
done
printf '%-6s %12s %12s %8s\n' median "$(median <"$RUN/memory.txt")" "$(median <"$RUN/redis.txt")" "$(median <"$RUN/ratios.txt")"
RATIO=$(median <"$RUN/ratios.txt")
echo "median per-round ratio redis / memory logins/s: $RATIO (acceptance: >= $MIN_REDIS_RATIO)"
echo "median per-round ratio of Caddy's CPU per login, redis / memory: $(median <"$RUN/cpuratios.txt")"
MED=$(median <"$RUN/redis.txt")
awk -v r="$RATIO" -v m="$MIN_REDIS_RATIO" -v l="$MED" -v ml="$MIN_LOGINS" 'BEGIN { exit !(r >= m && l >= ml) }'
