#!/usr/bin/env bash
# Forwarding throughput of the wechat_api gateway against a bare
# reverse_proxy to the same fake WeChat (bench/fakewechat), in one Caddy,
# measured with wrk in alternating rounds. Both sites get the same content
# check (bench/msgseccheck.lua); the bare one is sent the access token in
# the query (fetched from the fake first), the gateway adds it itself.
#
#   bench/gateway.sh                 5 rounds of 5 s, 2 threads, 32 connections
#   ROUNDS=9 DURATION=10s bench/gateway.sh
#   CADDY=./caddy bench/gateway.sh   use this Caddy binary instead of building
#
# Every answer must be 2xx with no socket error (wrk_run in lib.sh).
# Prints the median requests/s of each and the median of the per-round
# ratios gateway/bare; exits 1 when it is under MIN_RATIO (0.8).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
MIN_RATIO=${MIN_RATIO:-0.8}
APPID=wxbench000000001
SECRET=bench-secret

need_wrk
build_caddy
build_cmd fakewechat

FAKE_PORT=$(free_port)
BARE_PORT=$(free_port)
GW_PORT=$(free_port)
RUN="$RESULTS/gateway"
rm -rf "$RUN" && mkdir -p "$RUN"

cat >"$RUN/Caddyfile" <<CADDYFILE
$(caddy_globals)

:$BARE_PORT {
	bind 127.0.0.1
	reverse_proxy 127.0.0.1:$FAKE_PORT
}

:$GW_PORT {
	bind 127.0.0.1
	wechat_api {
		app_id $APPID
		app_secret $SECRET
		api_base http://127.0.0.1:$FAKE_PORT
		allow /wxa/msg_sec_check
	}
}
CADDYFILE

start_bg "$RUN/fakewechat.log" "$RESULTS/fakewechat" -addr "127.0.0.1:$FAKE_PORT" -appid "$APPID" -secret "$SECRET"
start_bg "$RUN/caddy.log" "$RESULTS/caddy" run --config "$RUN/Caddyfile" --adapter caddyfile
wait_port "$FAKE_PORT"
wait_port "$BARE_PORT"
wait_port "$GW_PORT"

TOKEN=$(curl -sf -X POST -d "{\"grant_type\":\"client_credential\",\"appid\":\"$APPID\",\"secret\":\"$SECRET\",\"force_refresh\":false}" \
	"http://127.0.0.1:$FAKE_PORT/cgi-bin/stable_token" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
[ -n "$TOKEN" ] || { echo "stable_token failed" >&2; exit 1; }
BODY='{"content":"hello world","version":2,"scene":2,"openid":"oBench000000000000000000001"}'
BARE="http://127.0.0.1:$BARE_PORT/wxa/msg_sec_check?access_token=$TOKEN"
GW="http://127.0.0.1:$GW_PORT/wxa/msg_sec_check"
for u in "$BARE" "$GW"; do
	got=$(curl -s -H 'Content-Type: application/json' -d "$BODY" "$u")
	case "$got" in *'"errcode":0'*'"suggest":"pass"'*) ;; *) echo "${u%%\?*} answered $got" >&2; exit 1 ;; esac
done

SCRIPT=(-s "$ROOT/bench/msgseccheck.lua")
DURATION=2s wrk_run warmup-bare 2xx "${SCRIPT[@]}" "$BARE" >/dev/null
DURATION=2s wrk_run warmup-gateway 2xx "${SCRIPT[@]}" "$GW" >/dev/null

printf '%-6s %11s %11s %8s\n' round bare_rps gateway_rps ratio
: >"$RUN/rounds.txt"
for i in $(seq 1 "$ROUNDS"); do
	if [ $((i % 2)) = 1 ]; then
		b=$(wrk_run bare 2xx "${SCRIPT[@]}" "$BARE")
		g=$(wrk_run gateway 2xx "${SCRIPT[@]}" "$GW")
	else
		g=$(wrk_run gateway 2xx "${SCRIPT[@]}" "$GW")
		b=$(wrk_run bare 2xx "${SCRIPT[@]}" "$BARE")
	fi
	awk -v i="$i" -v b="$b" -v g="$g" 'BEGIN { printf "%-6s %11.0f %11.0f %8.3f\n", i, b, g, g / b }' | tee -a "$RUN/rounds.txt"
done

med() { awk -v c="$1" '{ print $c }' "$RUN/rounds.txt" | median; }
MED_RATIO=$(med 4)
printf '%-6s %11.0f %11.0f %8s\n' median "$(med 2)" "$(med 3)" "$MED_RATIO"
echo "median of per-round ratios gateway/bare: $MED_RATIO (acceptance: >= $MIN_RATIO)"
if grep -q "$TOKEN" "$RUN/caddy.log"; then
	echo "the access token is in Caddy's log" >&2
	exit 1
fi
awk -v r="$MED_RATIO" -v m="$MIN_RATIO" 'BEGIN { exit !(r >= m) }'
