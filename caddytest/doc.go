// Package caddytest holds the integration tests of wechat_auth: each starts a
// real Caddy (in-process, admin on localhost:2999) from a Caddyfile, puts a
// fake WeChat (wechattest) behind api_base and an echoing upstream behind
// reverse_proxy, and checks what a mini program and an upstream app would
// see. The package has no non-test code.
package caddytest
