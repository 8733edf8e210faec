#!/usr/bin/env bash
# Build Caddy with wechat_auth, or run the sandbox example.
#
#   ./xcaddy.sh build      xcaddy build → ./caddy (standard modules + wechat_auth)
#   ./xcaddy.sh go-build   the same binary with plain `go build ./cmd/caddy`
#   ./xcaddy.sh run        build if needed, then run Caddyfile.example
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
	echo "building ./caddy with xcaddy (a cold build takes a few minutes)" >&2
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
	[ -n "$(find . -name '*.go' -newer ./caddy -not -path './bench/*' -print -quit)" ] && return 0
	[ go.mod -nt ./caddy ] && return 0
	return 1
}

case "${1:-}" in
build) build ;;
go-build) go_build ;;
run)
	if stale; then build; fi
	exec ./caddy run --config Caddyfile.example --adapter caddyfile
	;;
*)
	echo "usage: $0 build | go-build | run" >&2
	exit 2
	;;
esac
