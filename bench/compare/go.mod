module github.com/caddy-wechat/wechatauth/bench/compare

go 1.26.8

replace github.com/caddy-wechat/wechatauth => ../..

require (
	github.com/caddy-wechat/wechatauth v0.0.0-00010101000000-000000000000
	github.com/silenceper/wechat/v2 v2.1.10
)

require (
	github.com/bradfitz/gomemcache v0.0.0-20220106215444-fb4bf637b56d // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/dgryski/go-rendezvous v0.0.0-20200823014737-9f7001d12a5f // indirect
	github.com/go-redis/redis/v8 v8.11.5 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	golang.org/x/crypto v0.57.0 // indirect
)
