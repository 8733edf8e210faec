package outbox

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/certmagic"
)

// An upstream reply over the limit is not passed on cut short (broken XML
// for WeChat): the event counts as delivered, with no reply, and a
// warning without the content is logged.
func TestOversizedReplyIsDeliveredWithoutReply(t *testing.T) {
	for _, size := range []int{maxReply, maxReply + 1} {
		body := "<xml>" + strings.Repeat("A", size-len("<xml></xml>")) + "</xml>"
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(body))
		}))
		log, logs := observedLogger()
		o := New(storageBackend(t).store(t), testConfig(nil, log))
		res := accept(t, o, Event{Kind: "push", ID: "big", To: up.URL, Body: []byte("<xml/>")}, Delivered)
		up.Close()
		if size == maxReply {
			if len(res.Body) != size {
				t.Errorf("a reply of exactly 1 MiB: got %d bytes back", len(res.Body))
			}
			continue
		}
		if len(res.Body) != 0 {
			t.Errorf("an oversized reply came back as %d bytes, want none", len(res.Body))
		}
		warned := logs.FilterMessageSnippet("over 1 MiB").All()
		if len(warned) != 1 {
			t.Fatalf("%d warnings about the oversized reply, want 1", len(warned))
		}
		for _, f := range warned[0].Context {
			if strings.Contains(f.String, "AAAA") {
				t.Error("the warning holds the reply's content")
			}
		}
	}
}

// The upstream URL may carry a key in its query (?key=…, a common way to
// let a webhook know its caller). A failed delivery's error quotes the
// URL it was posting to; neither the error Accept returns nor any log
// line may carry that query.
func TestDeliveryErrorsLeaveOutTheUpstreamQuery(t *testing.T) {
	const key = "s3cr3t-hook-key"
	up := httptest.NewServer(http.NotFoundHandler())
	down := up.URL
	up.Close() // nothing listens there now: the post fails to connect
	log, logs := observedLogger()
	o := New(testStorageStore(t, failingStorage{&certmagic.FileStorage{Path: t.TempDir()}}, "outbox"), testConfig(nil, log))
	_, err := o.Accept(context.Background(), Event{Kind: "push", ID: "m1", To: down + "/push?key=" + key, Body: []byte("<xml/>")})
	if err == nil {
		t.Fatal("Accept succeeded with the upstream down and the outbox refusing")
	}
	if strings.Contains(err.Error(), key) {
		t.Errorf("Accept's error holds the upstream's query: %v", err)
	}
	if !strings.Contains(err.Error(), down+"/push") {
		t.Errorf("Accept's error no longer says where the delivery went: %v", err)
	}
	for _, e := range logs.All() {
		for _, f := range e.Context {
			if strings.Contains(f.String, key) || (f.Interface != nil && strings.Contains(fmt.Sprint(f.Interface), key)) {
				t.Errorf("log %q field %s holds the upstream's query", e.Message, f.Key)
			}
		}
	}
}

// An upstream whose answer is not HTTP gets its bytes quoted by net/http
// ("malformed HTTP status code …"); they may be message content, so
// neither Accept's error nor any log line carries them, while a refused
// connection still says what it is.
func TestDeliveryErrorsLeaveOutTheUpstreamsBytes(t *testing.T) {
	const secret = "reply-content-42"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				c.Read(buf)
				io.WriteString(c, "HTTP/1.1 "+secret+" OK\r\n\r\n")
			}()
		}
	}()
	log, logs := observedLogger()
	o := New(testStorageStore(t, failingStorage{&certmagic.FileStorage{Path: t.TempDir()}}, "outbox"), testConfig(nil, log))
	_, err = o.Accept(context.Background(), Event{Kind: "push", ID: "m1", To: "http://" + ln.Addr().String() + "/push", Body: []byte("<xml/>")})
	if err == nil {
		t.Fatal("Accept succeeded with a garbled upstream and the outbox refusing")
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("Accept's error holds the upstream's bytes: %v", err)
	}
	for _, e := range logs.All() {
		for _, f := range e.Context {
			if strings.Contains(f.String, secret) || (f.Interface != nil && strings.Contains(fmt.Sprint(f.Interface), secret)) {
				t.Errorf("log %q field %s holds the upstream's bytes", e.Message, f.Key)
			}
		}
	}
	ln.Close()
	_, err = o.Accept(context.Background(), Event{Kind: "push", ID: "m2", To: "http://" + ln.Addr().String() + "/push", Body: []byte("<xml/>")})
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("a refused connection: %v, want it named", err)
	}
}

// Withholding net/http's words keeps what an operator needs: an upstream
// whose certificate is not trusted is named as such.
func TestDeliveryErrorsStillNameTLSFailures(t *testing.T) {
	up := httptest.NewTLSServer(http.NotFoundHandler()) // a certificate of its own CA
	t.Cleanup(up.Close)
	o := New(testStorageStore(t, failingStorage{&certmagic.FileStorage{Path: t.TempDir()}}, "outbox"), testConfig(nil, nil))
	_, err := o.Accept(context.Background(), Event{Kind: "push", ID: "m1", To: up.URL + "/push", Body: []byte("<xml/>")})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("an untrusted certificate: %v, want it named", err)
	}
}

// An attempt that Route sends elsewhere than the event's own upstream says
// so, once for a backlog moved together, with no user or query (which
// may carry a key): the operator of instances that share a store but
// deliver to different upstreams can see it.
func TestRoutedAttemptIsLogged(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(up.Close)
	log, logs := observedLogger()
	cfg := testConfig(nil, log)
	cfg.Route = func(receiver, to string) string {
		if receiver == "wxmoved" {
			return up.URL + "/new?key=s3cret"
		}
		return to
	}
	o := New(testStorageStore(t, &certmagic.FileStorage{Path: t.TempDir()}, "outbox"), cfg)
	for i, rcv := range []string{"wxstays", "wxmoved", "wxmoved"} {
		if _, err := o.Accept(context.Background(), Event{Kind: "push", ID: fmt.Sprint(rcv, i), Receiver: rcv, To: "http://u:pw@127.0.0.1:1/old?key=s3cret", Body: []byte("<xml/>")}); err != nil {
			t.Fatal(err)
		}
	}
	moved := logs.FilterMessageSnippet("not the one they were queued for").All()
	if len(moved) != 1 {
		t.Fatalf("%d lines on routed attempts, want 1 (the moved receiver's, once)", len(moved))
	}
	f := moved[0].ContextMap()
	if f["receiver"] != "wxmoved" || f["queued_for"] != "http://127.0.0.1:1/old" || f["sent_to"] != up.URL+"/new" {
		t.Errorf("logged %v", f)
	}
	for _, v := range f {
		if s, ok := v.(string); ok && (strings.Contains(s, "s3cret") || strings.Contains(s, "pw")) {
			t.Errorf("logged a key or password: %v", f)
		}
	}
}
