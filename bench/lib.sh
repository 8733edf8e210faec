# Shared by the bench scripts: sourced, not run.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RESULTS="$ROOT/bench/results"
ON_LOAD=()  # a command prefix for wrk and the upstream (e.g. taskset)
ON_CADDY=() # a command prefix for Caddy
mkdir -p "$RESULTS"

# need_wrk installs wrk with apt-get when it is missing (root), or says how.
need_wrk() {
	command -v wrk >/dev/null 2>&1 && return
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "installing wrk with apt-get" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1 ||
			{ apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	fi
	command -v wrk >/dev/null 2>&1 || { echo "wrk is needed: apt-get install wrk (or brew install wrk)" >&2; exit 1; }
}

# build_caddy builds Caddy with wechat_auth as `./xcaddy.sh go-build` does
# and copies it into bench/results, so a rebuild of ./caddy during the run
# changes nothing. CADDY=/path/to/caddy uses that binary instead (e.g. one
# from `./xcaddy.sh build`).
build_caddy() {
	if [ -n "${CADDY:-}" ]; then
		[ "$(realpath "$CADDY")" = "$(realpath -m "$RESULTS/caddy")" ] || cp "$CADDY" "$RESULTS/caddy"
	else
		echo "building caddy (./xcaddy.sh go-build)" >&2
		(cd "$ROOT" && ./xcaddy.sh go-build && cp ./caddy "$RESULTS/caddy")
	fi
}

# build_cmd NAME builds bench/NAME into bench/results/NAME.
build_cmd() {
	(cd "$ROOT" && go build -o "$RESULTS/$1" "./bench/$1")
}

# caddy_globals prints the global options of the bench Caddyfiles: no admin
# endpoint, no HTTPS, storage under $RUN.
caddy_globals() {
	printf '{\n\tadmin off\n\tauto_https off\n\tstorage file_system %s/storage\n}\n' "$RUN"
}

# bare_site PORT and wechat_site PORT print the two sites proxy.sh compares
# (decompose.sh measures the same two among others), in front of the
# upstream on $UP_PORT. One definition, so both scripts measure the same.
bare_site() {
	printf ':%s {\n\tbind 127.0.0.1\n\treverse_proxy 127.0.0.1:%s\n}\n' "$1" "$UP_PORT"
}
wechat_site() {
	printf ':%s {\n\tbind 127.0.0.1\n\twechat_auth {\n\t\tsandbox\n\t\tsigning_key bench-signing-key-0123456789abcdef\n\t}\n\treverse_proxy 127.0.0.1:%s\n}\n' "$1" "$UP_PORT"
}

# two_sites NAME picks free ports for the upstream (UP_PORT), the bare
# site (BARE_PORT) and the wechat_auth site (AUTH_PORT), empties
# RUN=$RESULTS/NAME and writes there the Caddyfile serving both sites
# from one Caddy.
two_sites() {
	UP_PORT=$(free_port)
	BARE_PORT=$(free_port)
	AUTH_PORT=$(free_port)
	RUN="$RESULTS/$1"
	rm -rf "$RUN" && mkdir -p "$RUN"
	cat >"$RUN/Caddyfile" <<CADDYFILE
$(caddy_globals)

$(bare_site "$BARE_PORT")

$(wechat_site "$AUTH_PORT")
CADDYFILE
}

# start_two_sites starts what two_sites wrote (start_proxies), sets
# CADDY_PID, waits for the three ports and logs in (login_token).
start_two_sites() {
	start_proxies
	CADDY_PID=${PIDS[-1]}
	wait_port "$UP_PORT"
	wait_port "$BARE_PORT"
	wait_port "$AUTH_PORT"
	login_token "$AUTH_PORT"
}

# start_proxies starts bench/upstream on $UP_PORT (under ON_LOAD, if set)
# and Caddy with $RUN/Caddyfile (under ON_CADDY, if set).
# The pid of Caddy is then the last of PIDS (taskset execs, so it is
# Caddy's own, for cpu_ticks).
start_proxies() {
	start_bg "$RUN/upstream.log" "${ON_LOAD[@]}" "$RESULTS/upstream" -addr "127.0.0.1:$UP_PORT"
	start_bg "$RUN/caddy.log" "${ON_CADDY[@]}" "$RESULTS/caddy" run --config "$RUN/Caddyfile" --adapter caddyfile
}

# cpu_ticks PID prints the CPU time the process has used so far, user plus
# system, in clock ticks (utime + stime of /proc/PID/stat; the command name,
# field 2, may hold spaces, so the fields are counted after its ')').
cpu_ticks() {
	sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# wrk_requests NAME prints how many requests the last wrk run NAME
# completed (its "N requests in" line).
wrk_requests() {
	awk '/ requests in / { n = $1 } END { print n + 0 }' "$RUN/wrk-$1.log"
}

# free_port prints a loopback TCP port nothing listens on.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 30000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
}

# wait_port PORT waits up to 20 s for something to listen on PORT.
wait_port() {
	local i
	for i in $(seq 1 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "nothing listens on port $1 after 20 s" >&2
	return 1
}

# Processes this script started, stopped on exit by their own pids.
PIDS=()
start_bg() { # LOGFILE CMD...
	local log="$1"
	shift
	"$@" >"$log" 2>&1 &
	PIDS+=("$!")
}
stop_all() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap stop_all EXIT

# median reads numbers, one a line, and prints their median.
median() {
	sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) exit 1; if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# field NAME LINE prints the value of NAME=value in LINE.
field() {
	echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"
}

# wrk_run NAME WANT ARGS...: one wrk run (THREADS, CONNECTIONS, DURATION,
# under ON_LOAD; its output appended to $RUN/wrk-NAME.log); prints its
# requests/s. WANT 2xx runs
# plain wrk, as anyone measuring from outside would: every answer must be
# 2xx (wrk prints a "Non-2xx" line otherwise) with no socket error. WANT 401
# runs with status.lua, whose response() hook counts the statuses: every
# answer must be a 401. A response() hook costs wrk CPU on every answer, on
# the cores Caddy uses, so the measured runs do without it.
wrk_run() {
	local name="$1" want="$2" out
	shift 2
	if [ "$want" = 2xx ]; then
		out=$("${ON_LOAD[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "$@" 2>&1)
		echo "$out" >>"$RUN/wrk-$name.log"
		# Here-strings, not echo | grep -q: grep -q exits at its first
		# match, echo may then die of SIGPIPE, and under pipefail that
		# failed pipeline would read as "no Requests/sec line".
		if grep -qE '^ *(Non-2xx|Socket errors)' <<<"$out" || ! grep -q '^Requests/sec:' <<<"$out"; then
			echo "$name: expected every answer 2xx, with no socket error:" >&2
			echo "$out" >&2
			exit 1
		fi
		echo "$out" | awk '/^Requests\/sec:/ { print $2 }'
		return
	fi
	out=$("${ON_LOAD[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$ROOT/bench/status.lua" "$@" 2>&1)
	echo "$out" >>"$RUN/wrk-$name.log"
	local line requests good errors
	line=$(echo "$out" | grep '^STATUS ') || { echo "$name: wrk printed no STATUS line:" >&2; echo "$out" >&2; exit 1; }
	requests=$(field requests "$line")
	good=$(field "$want" "$line")
	errors=$(field errors "$line")
	if [ "$requests" -eq 0 ] || [ "$good" -ne "$requests" ] || [ "$errors" -ne 0 ]; then
		echo "$name: expected every answer $want: $line" >&2
		exit 1
	fi
	field rps "$line"
}

# client_headers sets CLIENT_HDRS, the curl and wrk -H arguments of what
# every request carries besides its token.
client_headers() {
	# CLIENT=miniprogram (the default): the headers WeChat's runtime sends with a mini program's
	# wx.request (as BenchmarkProxiedRequest's request has them). CLIENT=wrk:
	# only what wrk sends, Host. With so few headers the four identity headers
	# tip the upstream request's header map past Go's 8-entry small map (Caddy
	# adds Via and three X-Forwarded-*), a growth the bare proxy is spared;
	# with a real client's headers both sides pay it.
	CLIENT=${CLIENT:-miniprogram}
	case $CLIENT in
	miniprogram)
		CLIENT_HDRS=(-H 'Accept: */*' -H 'Accept-Encoding: gzip, deflate, br' -H 'Accept-Language: zh-CN,zh;q=0.9'
			-H 'Content-Type: application/json' -H 'Referer: https://servicewechat.com/wx4f4bc4dec97d474b/12/page-frame.html'
			-H 'User-Agent: Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.44(0x18002c2f) NetType/WIFI Language/zh_CN') ;;
	wrk) CLIENT_HDRS=() ;;
	*) echo "CLIENT is miniprogram or wrk, not $CLIENT" >&2; exit 1 ;;
	esac
}

# login_token PORT logs in once at the wechat_auth site on PORT and sets
# TOKEN, HDR (its Authorization header) and IDS, the -H arguments of the
# identity headers wechat_auth forwards for that token, from its claims:
# sent to the bare site beside the token, the bare proxy forwards what
# wechat_auth forwards.
login_token() {
	TOKEN=$(curl -sf -X POST -d code=bench-user "http://127.0.0.1:$1/wx/login" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
	[ -n "$TOKEN" ] || { echo "login failed" >&2; exit 1; }
	HDR="Authorization: Bearer $TOKEN"
	local claims
	claims=$(cut -d. -f2 <<<"$TOKEN" | tr '_-' '/+')
	while [ $((${#claims} % 4)) -ne 0 ]; do claims="$claims="; done
	claims=$(base64 -d <<<"$claims")
	claim() { sed -n 's/.*"'"$1"'":"\([^"]*\)".*/\1/p' <<<"$claims"; }
	IDS=(-H "X-Wx-Openid: $(claim sub)" -H "X-Wx-Appid: $(claim aud)" -H "X-Wx-Source: wx_client" -H "X-Wx-Unionid: $(claim unionid)")
}
