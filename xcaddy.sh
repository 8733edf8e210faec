#!/usr/bin/env bash
# Build Caddy with wechat_auth, or run the sandbox example.
#
#   ./xcaddy.sh build      xcaddy build → ./caddy (standard modules + wechat_auth)
#   ./xcaddy.sh go-build   the same binary with plain `go build ./cmd/caddy`
#   ./xcaddy.sh run        build if needed, then run Caddyfile.example and print
#                          the next commands once it answers
#
# Needs only Go: xcaddy is installed with `go install` when missing.
set -euo pipefail
cd "$(dirname "$0")"

CADDY_VERSION=v2.11.9
XCADDY_VERSION=v0.4.5
MODULE=github.com/caddy-wechat/wechatauth

xcaddy_bin() {
	if command -v xcaddy >/dev/null 2>&1; then
		command -v xcaddy
		return
	fi
	local gobin
	gobin="$(go env GOBIN)"
	[ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
	if [ ! -x "$gobin/xcaddy" ]; then
		echo "installing xcaddy $XCADDY_VERSION" >&2
		go install "github.com/caddyserver/xcaddy/cmd/xcaddy@$XCADDY_VERSION"
	fi
	echo "$gobin/xcaddy"
}

build() {
	echo "building ./caddy with xcaddy (a cold build takes 3 to 15 minutes on 2 cores; its last step prints nothing for minutes)" >&2
	# xcaddy looks a plugin up in the module registry unless it has a
	# version, so the local checkout is named with a placeholder one.
	"$(xcaddy_bin)" build "$CADDY_VERSION" --output ./caddy --with "$MODULE@v0.0.0=."
}

go_build() {
	go build -o ./caddy ./cmd/caddy
}

# stale reports whether ./caddy is missing or older than the sources.
stale() {
	[ ! -x ./caddy ] && return 0
	[ -n "$(find . -name '*.go' -not -name '*_test.go' -newer ./caddy -not -path './bench/*' -print -quit)" ] && return 0
	[ go.mod -nt ./caddy ] && return 0
	return 1
}

DEMO_URL=http://localhost:8080

# up reports whether the demo site answers HTTP at all (a 401 counts).
up() {
	if command -v curl >/dev/null 2>&1; then
		curl -s -o /dev/null --max-time 1 "$DEMO_URL/"
	else
		(exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null
	fi
}

# announce_when_up polls the demo for up to 60 s while process $1 (Caddy)
# lives, then prints where it listens and the next two commands.
announce_when_up() {
	local caddy_pid=$1 i
	for ((i = 0; i < 600; i++)); do
		kill -0 "$caddy_pid" 2>/dev/null || return 0
		if up; then
			cat <<'EOF'

  wechat_auth demo (sandbox) is up on http://localhost:8080 and
  http://127.0.0.1:8080, listening on 127.0.0.1 only. Next, in another terminal:

    TOKEN=$(curl -s -X POST localhost:8080/wx/login -d code=demo | sed 's/.*"token":"\([^"]*\)".*/\1/')
    curl -s localhost:8080/api/hello -H "Authorization: Bearer $TOKEN"

  The second shows the X-WX-OPENID the upstream received. Stop with Ctrl-C.

EOF
			return 0
		fi
		sleep 0.1
	done
	echo "xcaddy.sh: the demo did not answer on $DEMO_URL within 60 s" >&2
}

case "${1:-}" in
build) build ;;
go-build) go_build ;;
run)
	# Caddy shares its ports with another Caddy (SO_REUSEPORT): a second
	# demo would start beside an old one and split the requests with it.
	if up; then
		echo "xcaddy.sh: something already answers on $DEMO_URL (an earlier demo?); stop it first" >&2
		exit 1
	fi
	if stale; then build; fi
	# Caddy replaces this shell (so Ctrl-C and kill reach it directly); a
	# background poller prints what to do next once the demo answers.
	announce_when_up "$$" &
	exec ./caddy run --config Caddyfile.example --adapter caddyfile
	;;
*)
	echo "usage: $0 build | go-build | run" >&2
	exit 2
	;;
esac
