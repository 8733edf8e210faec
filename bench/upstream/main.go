// Command upstream is the backend of bench/proxy.sh: it answers every
// request with 200 "ok", as cheaply as net/http allows, so what the
// benchmark measures is the proxy in front of it.
package main

import (
	"flag"
	"log"
	"net/http"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "address to listen on")
	flag.Parse()
	body := []byte("ok")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"text/plain"}
		w.Write(body)
	})
	log.Fatal(http.ListenAndServe(*addr, h))
}
