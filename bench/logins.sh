#!/usr/bin/env bash
# Login throughput: wrk POSTs /wx/login, each with a new code, to a Caddy
# whose wechat_auth talks to a fake WeChat (bench/fakewechat, package
# wechattest) on loopback. Each login is a real code2session call over
# HTTP, a new session stored and a token signed.
#
#   bench/logins.sh                3 rounds of 10 s, 2 threads, 32 connections
#   ROUNDS=5 DURATION=20s bench/logins.sh
#   CADDY=./caddy bench/logins.sh  use this Caddy binary instead of building
#
# Every answer must be 200. Prints logins per second per round and their
# median; exits 1 when the median is under MIN_LOGINS (500).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
MIN_LOGINS=${MIN_LOGINS:-500}

need_wrk
build_caddy
build_cmd fakewechat

WX_PORT=$(free_port)
PORT=$(free_port)
RUN="$RESULTS/logins"
rm -rf "$RUN" && mkdir -p "$RUN"

cat >"$RUN/Caddyfile" <<CADDYFILE
$(caddy_globals)

:$PORT {
	bind 127.0.0.1
	wechat_auth {
		app_id wxbench000000001
		app_secret bench-secret
		api_base http://127.0.0.1:$WX_PORT
		signing_key bench-signing-key-0123456789abcdef
	}
	respond "ok"
}
CADDYFILE

start_bg "$RUN/fakewechat.log" "$RESULTS/fakewechat" -addr "127.0.0.1:$WX_PORT" -appid wxbench000000001 -secret bench-secret
start_bg "$RUN/caddy.log" "$RESULTS/caddy" run --config "$RUN/Caddyfile" --adapter caddyfile
wait_port "$WX_PORT"
wait_port "$PORT"

got=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d code=check "http://127.0.0.1:$PORT/wx/login")
[ "$got" = 200 ] || { echo "a login answered $got, want 200 (see $RUN/caddy.log)" >&2; exit 1; }

export BENCH_DIR="$ROOT/bench"
: >"$RUN/rounds.txt"
printf '%-6s %12s\n' round logins/s
for i in $(seq 0 "$ROUNDS"); do
	out=$(BENCH_RUN="$i" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$ROOT/bench/login.lua" "http://127.0.0.1:$PORT/wx/login" 2>&1)
	echo "$out" >>"$RUN/wrk.log"
	line=$(echo "$out" | grep '^STATUS ') || { echo "wrk printed no STATUS line:" >&2; echo "$out" >&2; exit 1; }
	if [ "$(field 2xx "$line")" -ne "$(field requests "$line")" ] || [ "$(field errors "$line")" -ne 0 ]; then
		echo "round $i: expected every login to answer 200: $line" >&2
		exit 1
	fi
	if [ "$i" = 0 ]; then
		continue # warm-up
	fi
	rps=$(field rps "$line")
	printf '%-6s %12s\n' "$i" "$rps"
	echo "$rps" >>"$RUN/rounds.txt"
done
MED=$(median <"$RUN/rounds.txt")
printf '%-6s %12s\n' median "$MED"
echo "median logins per second: $MED (acceptance: >= $MIN_LOGINS)"
awk -v r="$MED" -v m="$MIN_LOGINS" 'BEGIN { exit !(r >= m) }'
