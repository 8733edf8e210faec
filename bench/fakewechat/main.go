// Command fakewechat serves the fake WeChat API of package wechattest on a
// loopback port, for bench/logins.sh: every code logs a user in (each new
// code a new user), and each code works once, as WeChat's do.
package main

import (
	"flag"
	"log"
	"net/http"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9001", "address to listen on")
	appid := flag.String("appid", "wxbench000000001", "the mini program's appid")
	secret := flag.String("secret", "bench-secret", "its app secret")
	flag.Parse()
	s := wechattest.NewServer(wechattest.Options{AutoCodes: true})
	s.AddApp(*appid, *secret)
	log.Fatal(http.ListenAndServe(*addr, s))
}
