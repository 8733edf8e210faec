// Command caddy is Caddy with its standard modules and wechat_auth, for
// `go build ./cmd/caddy`. xcaddy.sh builds the same binary.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-wechat/wechatauth"
)

func main() {
	caddycmd.Main()
}
