#!/usr/bin/env bash
# Throughput and Caddy CPU per request of wechat_auth + reverse_proxy against
# a bare reverse_proxy to the same upstream, measured with wrk in
# alternating rounds. One Caddy serves both sites.
#
#   bench/proxy.sh                 7 rounds of 5 s, 2 threads, 32 connections
#   ROUNDS=15 DURATION=10s bench/proxy.sh
#   CADDY=./caddy bench/proxy.sh   use this Caddy binary instead of building
#   PIN=1 bench/proxy.sh           Caddy alone on core 1, wrk (1 thread) and
#                                  the upstream on core 0
#   CLIENT=wrk bench/proxy.sh      requests with wrk's Host header only, not
#                                  a mini program's headers
#
# Each round runs wrk against the bare site, the bare site with the same
# Authorization header the wechat_auth runs send ("same": the same request
# both ways), the bare site with that header and the four identity headers
# wechat_auth forwards for the token ("ids": the bare proxy forwards what
# wechat_auth forwards), the wechat_auth site with a valid token, and the
# wechat_auth site without one (401 expected); the order of the first four rotates
# between rounds so drift in the machine's load favours none. Any answer other than 2xx where 2xx
# is expected (or 401 where 401 is), and any socket error, fails the run
# (wrk_run in lib.sh says how each is checked).
# Prints the median requests/s of each and the medians of the per-round
# ratios wechat_auth/bare ("ratio") and wechat_auth/bare-with-the-header
# ("same"); exits 1 when "ratio" is under MIN_RATIO (0.95).
# It also prints Caddy's CPU time per request of each run (utime + stime of
# /proc/<caddy pid>/stat before and after the run, over the requests wrk
# completed: the runs are one at a time, so the delta is that run's site's)
# as "cpu": per round, bare CPU/request with the same header / wechat_auth
# CPU/request, the same request both ways (1.00: wechat_auth costs Caddy
# nothing; the goal is >= 0.98), with its median and range over the rounds,
# and "cpu_ids": bare with the identity headers / wechat_auth, the cost of
# wechat_auth's own work once the headers' cost in Caddy is left out.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-7}
DURATION=${DURATION:-5s}
PIN=${PIN:-0}
# On 2 cores wrk competes with Caddy for CPU, and a request carrying a
# 347-byte token costs wrk more to send than a bare one: that cost lands on
# the wechat_auth side of the ratio. PIN=1 keeps the load generator off
# Caddy's core, so the ratio measures Caddy alone.
if [ "$PIN" = 1 ]; then
	command -v taskset >/dev/null 2>&1 || { echo "PIN=1 needs taskset (util-linux)" >&2; exit 1; }
	ON_CADDY=(taskset -c 1)
	ON_LOAD=(taskset -c 0)
	THREADS=${THREADS:-1}
fi
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
MIN_RATIO=${MIN_RATIO:-0.95}
client_headers

need_wrk
build_caddy
build_cmd upstream

two_sites proxy

start_two_sites
check() { # WANT_STATUS URL [HEADER]
	local got
	got=$(curl -s -o /dev/null -w '%{http_code}' ${3:+-H "$3"} "$2")
	[ "$got" = "$1" ] || { echo "$2 answered $got, want $1" >&2; exit 1; }
}
check 200 "http://127.0.0.1:$BARE_PORT/api/orders"
check 200 "http://127.0.0.1:$AUTH_PORT/api/orders" "Authorization: Bearer $TOKEN"
check 401 "http://127.0.0.1:$AUTH_PORT/api/orders"

BARE="http://127.0.0.1:$BARE_PORT/api/orders"
AUTH="http://127.0.0.1:$AUTH_PORT/api/orders"

# Warm up: connections, pools, the token cache.
DURATION=2s wrk_run warmup-bare 2xx "${CLIENT_HDRS[@]}" "$BARE" >/dev/null
DURATION=2s wrk_run warmup-token 2xx "${CLIENT_HDRS[@]}" -H "$HDR" "$AUTH" >/dev/null

# measure KIND NAME PID WANT ARGS...: one wrk run; sets RPS[KIND] and
# CPU[KIND], Caddy PID's CPU ticks per request during the run, and adds
# the run's ticks and requests to TICKS[KIND] and REQS[KIND] (all rounds).
declare -A RPS CPU TICKS REQS
measure() {
	local kind="$1" name="$2" pid="$3" want="$4" before after n
	shift 4
	before=$(cpu_ticks "$pid")
	RPS[$kind]=$(wrk_run "$name" "$want" "$@")
	after=$(cpu_ticks "$pid")
	n=$(wrk_requests "$name")
	[ "$n" -gt 0 ] || { echo "$name: wrk completed no request" >&2; exit 1; }
	CPU[$kind]=$(awk -v d="$((after - before))" -v n="$n" 'BEGIN { printf "%.9g\n", d / n }')
	TICKS[$kind]=$((${TICKS[$kind]:-0} + after - before))
	REQS[$kind]=$((${REQS[$kind]:-0} + n))
}

TICK_US=$((1000000 / $(getconf CLK_TCK)))
printf '%-6s %11s %11s %11s %11s %8s %8s %8s %8s %8s %8s %8s\n' round bare_rps same_rps token_rps no_token_rps ratio same same_us token_us cpu ids_us cpu_ids
: >"$RUN/rounds.txt"
KINDS=(bare same token ids)
for i in $(seq 1 "$ROUNDS"); do
	# Rotate the order, so no kind always runs first or last.
	for k in 0 1 2 3; do
		case ${KINDS[$(((k + i) % 4))]} in
		bare) measure bare bare "$CADDY_PID" 2xx "${CLIENT_HDRS[@]}" "$BARE" ;;
		same) measure same bare-same "$CADDY_PID" 2xx "${CLIENT_HDRS[@]}" -H "$HDR" "$BARE" ;;
		token) measure token token "$CADDY_PID" 2xx "${CLIENT_HDRS[@]}" -H "$HDR" "$AUTH" ;;
		ids) measure ids bare-ids "$CADDY_PID" 2xx "${CLIENT_HDRS[@]}" -H "$HDR" "${IDS[@]}" "$BARE" ;;
		esac
	done
	none=$(wrk_run no-token 401 "${CLIENT_HDRS[@]}" "$AUTH")
	awk -v i="$i" -v b="${RPS[bare]}" -v s="${RPS[same]}" -v t="${RPS[token]}" -v n="$none" \
		-v cs="${CPU[same]}" -v ct="${CPU[token]}" -v ci="${CPU[ids]}" -v us="$TICK_US" 'BEGIN {
		printf "%-6s %11.0f %11.0f %11.0f %11.0f %8.3f %8.3f %8.1f %8.1f %8.3f %8.1f %8.3f\n", i, b, s, t, n, t / b, t / s, cs * us, ct * us, cs / ct, ci * us, ci / ct
	}' | tee -a "$RUN/rounds.txt"
done

med() { awk -v c="$1" '{ print $c }' "$RUN/rounds.txt" | median; }
MED_RATIO=$(med 6)
printf '%-6s %11.0f %11.0f %11.0f %11.0f %8s %8s %8s %8s %8s %8s %8s\n' median "$(med 2)" "$(med 3)" "$(med 4)" "$(med 5)" "$MED_RATIO" "$(med 7)" "$(med 8)" "$(med 9)" "$(med 10)" "$(med 11)" "$(med 12)"
echo "median of per-round ratios wechat_auth/bare: $MED_RATIO (acceptance: >= $MIN_RATIO)"
echo "the same, the bare site sent the same Authorization header (same request both ways): $(med 7)"
echo "no-token/bare (401 answers): $(awk '{ printf "%.3f\n", $5 / $2 }' "$RUN/rounds.txt" | median)"
echo "Caddy CPU per request, bare with the same header / wechat_auth (goal >= 0.98): median $(med 10), per round $(awk '{ print $10 }' "$RUN/rounds.txt" | sort -g | sed -n '1p;$p' | paste -sd'-' | sed 's/-/ to /')"
# Pooled: all rounds' CPU over all rounds' requests, per kind. A round's
# ratio moves with the machine's load (one run's CPU per request of the
# same site varied from 102 to 166 us); the pooled figure averages that
# drift over every round of both kinds.
echo "Caddy CPU per request over all rounds, bare with the same header / wechat_auth: $(awk -v ts="${TICKS[same]}" -v ns="${REQS[same]}" -v tt="${TICKS[token]}" -v nt="${REQS[token]}" 'BEGIN { printf "%.3f (%.1f / %.1f us)\n", (ts / ns) / (tt / nt), ts / ns * '"$TICK_US"', tt / nt * '"$TICK_US"' }')"
echo "the same, the bare site also sent the identity headers wechat_auth forwards (wechat_auth's own work): $(awk -v ti="${TICKS[ids]}" -v ni="${REQS[ids]}" -v tt="${TICKS[token]}" -v nt="${REQS[token]}" 'BEGIN { printf "%.3f (%.1f / %.1f us)\n", (ti / ni) / (tt / nt), ti / ni * '"$TICK_US"', tt / nt * '"$TICK_US"' }')"
awk -v r="$MED_RATIO" -v m="$MIN_RATIO" 'BEGIN { exit !(r >= m) }'
