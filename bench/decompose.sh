#!/usr/bin/env bash
# Where the gap between wechat_auth and a bare reverse_proxy comes from:
# four sites in one Caddy, in front of the same upstream, measured with wrk
# in rotating order, every request but the bare site's carrying the same
# token.
#
#   bare    reverse_proxy alone, no Authorization header sent
#   strip   Caddy's own request_header deletes the Authorization header
#   strip3  the same, and request_header sets the three identity headers
#           wechat_auth sets (X-WX-OPENID, X-WX-APPID, X-WX-UNIONID) to
#           fixed values
#   wechat  wechat_auth (sandbox), which verifies the token, strips client
#           identity headers, sets the three headers and the placeholders
#
# strip/bare is what carrying a token costs with the cheapest handler Caddy
# has; strip3/strip what forwarding three identity headers costs; and
# wechat/strip3 what wechat_auth's own work costs on top of the same
# headers. Prints the medians of the per-round ratios.
#
#   bench/decompose.sh                 9 rounds of 5 s, 2 threads, 32 connections
#   ROUNDS=15 CADDY=./caddy bench/decompose.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-9}
DURATION=${DURATION:-5s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}

need_wrk
build_caddy
build_cmd upstream

UP_PORT=$(free_port)
declare -A PORT
for s in bare strip strip3 wechat; do PORT[$s]=$(free_port); done
RUN="$RESULTS/decompose"
rm -rf "$RUN" && mkdir -p "$RUN"

cat >"$RUN/Caddyfile" <<CADDYFILE
$(caddy_globals)

$(bare_site "${PORT[bare]}")

:${PORT[strip]} {
	bind 127.0.0.1
	request_header -Authorization
	reverse_proxy 127.0.0.1:$UP_PORT
}

:${PORT[strip3]} {
	bind 127.0.0.1
	request_header -Authorization
	request_header X-WX-OPENID oHpDrOiLEe5ncP1a8HQVQK7nF-h0
	request_header X-WX-APPID wxsandbox0000000
	request_header X-WX-UNIONID ua-So-SJXn9LM8I_a9a16t31FwhR
	reverse_proxy 127.0.0.1:$UP_PORT
}

$(wechat_site "${PORT[wechat]}")
CADDYFILE

start_proxies
wait_port "$UP_PORT"
for s in bare strip strip3 wechat; do wait_port "${PORT[$s]}"; done

login_token "${PORT[wechat]}"

# measure SITE: one wrk run against SITE; prints its requests/s.
measure() {
	local url="http://127.0.0.1:${PORT[$1]}/api/orders"
	if [ "$1" = bare ]; then
		wrk_run "$1" 2xx "$url"
	else
		wrk_run "$1" 2xx -H "$HDR" "$url"
	fi
}

for s in bare strip strip3 wechat; do DURATION=2s measure "$s" >/dev/null; done

SITES=(bare strip strip3 wechat)
printf '%-6s %9s %9s %9s %9s | %11s %13s %14s\n' round bare strip strip3 wechat strip/bare strip3/strip wechat/strip3
: >"$RUN/rounds.txt"
declare -A RPS
for i in $(seq 1 "$ROUNDS"); do
	# Rotate the order, so no site always runs first or last.
	for k in 0 1 2 3; do
		s=${SITES[$(((k + i) % 4))]}
		RPS[$s]=$(measure "$s")
	done
	awk -v i="$i" -v b="${RPS[bare]}" -v s="${RPS[strip]}" -v s3="${RPS[strip3]}" -v w="${RPS[wechat]}" 'BEGIN {
		printf "%-6s %9.0f %9.0f %9.0f %9.0f | %11.3f %13.3f %14.3f\n", i, b, s, s3, w, s / b, s3 / s, w / s3
	}' | tee -a "$RUN/rounds.txt"
done

med() { awk -v c="$1" '{ print $c }' "$RUN/rounds.txt" | median; }
echo "medians of per-round ratios: strip/bare $(med 7), strip3/strip $(med 8), wechat/strip3 $(med 9)"
echo "wechat/bare, median of per-round ratios: $(awk '{ printf "%.3f\n", $5 / $2 }' "$RUN/rounds.txt" | median)"
