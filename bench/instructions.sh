#!/usr/bin/env bash
# Instructions Caddy executes per proxied request, wechat_auth against a
# bare reverse_proxy, counted by valgrind's callgrind. Unlike CPU time or
# requests/s, a count does not move with what else the machine runs, so a
# 1 % difference shows in one run on a shared machine. It leaves out the
# kernel's work (the system calls, the same for both sites), so its ratio
# is lower than the CPU-time ratio of proxy.sh, which includes it.
#
#   bench/instructions.sh              4 rounds of 4,000 requests per kind
#   N=2000 ROUNDS=6 bench/instructions.sh
#   FUNCS=1 bench/instructions.sh      also: per function, token less same
#   CADDY=./caddy bench/instructions.sh
#
# The sites and requests are proxy.sh's (CLIENT too). Kinds, one Caddy:
# "same", the bare site sent the same request as the wechat_auth site;
# "token", the wechat_auth site with a valid token; "ids", the bare site
# sent that request plus the identity headers wechat_auth forwards. Each
# round zeroes the counters, sends N requests of one kind over one
# keep-alive connection (curl, one after the other) and dumps the counts.
# Prints each kind's mean instructions per request and the ratios
# same/token (1.00: wechat_auth costs Caddy nothing) and ids/token.
#
# Caddy runs with GOMAXPROCS=1 and GODEBUG=asyncpreemptoff=1 under
# callgrind: callgrind runs one thread at a time anyway, and asserts on
# the signals Go's asynchronous preemption sends.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

N=${N:-4000}
ROUNDS=${ROUNDS:-4}
FUNCS=${FUNCS:-0}
client_headers

if ! command -v valgrind >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "installing valgrind with apt-get" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null 2>&1 ||
		{ apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }
fi
command -v callgrind_control >/dev/null 2>&1 || { echo "valgrind is needed: apt-get install valgrind" >&2; exit 1; }

build_caddy
build_cmd upstream

two_sites instructions

ON_CADDY=(env GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --instr-atstart=no
	--dump-instr=yes "--callgrind-out-file=$RUN/callgrind.out.%p")
start_two_sites

BARE="http://127.0.0.1:$BARE_PORT/api/orders?n=[1-$N]"
AUTH="http://127.0.0.1:$AUTH_PORT/api/orders?n=[1-$N]"

# send NAME ARGS...: N requests on one connection (curl's URL range); every
# answer must be a 200.
send() {
	local name="$1" codes
	shift
	codes=$(curl -s -w '%{stderr}%{http_code}\n' "$@" 2>&1 >/dev/null | sort | uniq -c)
	[ "$codes" = "$(printf '%7d 200' "$N")" ] || { echo "$name: expected $N answers 200, got: $codes" >&2; exit 1; }
}

# Warm up: connections, pools, the token cache.
send warmup-same "${CLIENT_HDRS[@]}" -H "$HDR" "$BARE"
send warmup-token "${CLIENT_HDRS[@]}" -H "$HDR" "$AUTH"
send warmup-ids "${CLIENT_HDRS[@]}" -H "$HDR" "${IDS[@]}" "$BARE"

callgrind_control -i on "$CADDY_PID" >/dev/null 2>&1
KINDS=(same token ids)
for r in $(seq 1 "$ROUNDS"); do
	for i in 0 1 2; do
		kind=${KINDS[$(((i + r) % 3))]}
		callgrind_control -z "$CADDY_PID" >/dev/null 2>&1
		case $kind in
		same) send "$kind" "${CLIENT_HDRS[@]}" -H "$HDR" "$BARE" ;;
		token) send "$kind" "${CLIENT_HDRS[@]}" -H "$HDR" "$AUTH" ;;
		ids) send "$kind" "${CLIENT_HDRS[@]}" -H "$HDR" "${IDS[@]}" "$BARE" ;;
		esac
		callgrind_control -d "$kind-$r" "$CADDY_PID" >/dev/null 2>&1
	done
done

# dumps KIND prints the dump files of that kind, comma-separated.
dumps() {
	grep -l "^desc: Trigger: dump $1-" "$RUN"/callgrind.out.* | paste -sd, -
}
# per_request KIND prints each dump's instructions per request, one a line.
per_request() {
	local f
	for f in $(dumps "$1" | tr , ' '); do
		awk -v n="$N" '/^summary:/ { printf "%.0f\n", $2 / n }' "$f"
	done
}
declare -A MEAN
printf '%-6s %12s  %s\n' kind mean per-round
for kind in "${KINDS[@]}"; do
	MEAN[$kind]=$(per_request "$kind" | awk '{ s += $1 } END { printf "%.0f", s / NR }')
	printf '%-6s %12s  %s\n' "$kind" "${MEAN[$kind]}" "$(per_request "$kind" | paste -sd' ' -)"
done
echo "instructions per request, bare sent the same request / wechat_auth: $(awk -v a="${MEAN[same]}" -v b="${MEAN[token]}" 'BEGIN { printf "%.4f", a / b }')"
echo "bare sent the same request and the identity headers / wechat_auth: $(awk -v a="${MEAN[ids]}" -v b="${MEAN[token]}" 'BEGIN { printf "%.4f", a / b }')"

if [ "$FUNCS" = 1 ]; then
	echo "per function (self instructions per request), token less same:"
	(cd "$ROOT" && go run ./bench/cgfuncs -bin "$RESULTS/caddy" -n "$N" -a "$(dumps same)" -b "$(dumps token)" -top 30 -group github.com/caddy-wechat/wechatauth)
fi
