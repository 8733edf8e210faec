package wechatauth

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/wechattest"
	"github.com/caddyserver/certmagic"
)

// An event goes to the upstream its receiver delivers to now: where it
// was queued while a handler of that receiver still delivers there, else
// the receiver's one upstream of today. A receiver no handler serves, or
// one with several other upstreams, keeps the event's.
func TestRouteFollowsTheReceiver(t *testing.T) {
	p := &pooledOutbox{held: make(map[heldKey]*held)}
	s := func(receiver, to string) deliverySettings { return deliverySettings{Receiver: receiver, To: to} }
	check := func(receiver, to, want string) {
		t.Helper()
		if got := p.route(receiver, to); got != want {
			t.Errorf("route(%q, %q) = %q, want %q", receiver, to, got, want)
		}
	}
	p.hold(s("1900000001", "http://a/notify"))
	check("1900000001", "http://a/notify", "http://a/notify")
	check("1900000001", "http://old/notify", "http://a/notify") // moved by a reload
	check("1900000002", "http://old/notify", "http://old/notify")
	check("", "http://old/notify", "http://old/notify") // queued before events named their receiver

	p.hold(s("1900000001", "http://b/notify"))
	check("1900000001", "http://b/notify", "http://b/notify")
	check("1900000001", "http://old/notify", "http://old/notify") // which of two: nobody's guess

	p.drop(s("1900000001", "http://a/notify"))
	check("1900000001", "http://a/notify", "http://b/notify")
	p.drop(s("1900000001", "http://b/notify"))
	check("1900000001", "http://a/notify", "http://a/notify")
}

// A reload that gives a push receiver another upstream sends what it had
// queued to the new one: WeChat was told those pushes were taken, and the
// old upstream may be gone for good.
func TestQueuedPushFollowsItsReceiverToANewUpstream(t *testing.T) {
	retryEvery100ms(t)
	var (
		mu  sync.Mutex
		got = map[string]int{}
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.URL.Path]++
		mu.Unlock()
		if r.URL.Path == "/old" {
			w.WriteHeader(http.StatusBadGateway) // gone
		}
	}))
	t.Cleanup(srv.Close)
	const app = "wxa000000000000001"
	old := &Push{AppID: app, Token: benchPushToken, DeliveryConfig: DeliveryConfig{To: srv.URL + "/old"}}
	if err := old.Provision(benchContext(t)); err != nil {
		t.Fatal(err)
	}
	msg := []byte(`<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[oUser1]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content><MsgId>4343</MsgId></xml>`)
	if w := servePlainPush(t, old, "n1", msg); w.Code != http.StatusOK {
		t.Fatalf("push: %d %s", w.Code, w.Body)
	}
	// The reload: the new config's receiver of the same app starts, then
	// the old config's is cleaned up.
	cur := &Push{AppID: app, Token: benchPushToken, DeliveryConfig: DeliveryConfig{To: srv.URL + "/new"}}
	if err := cur.Provision(benchContext(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cur.Cleanup() })
	if _, err := cur.delivery.open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := old.Cleanup(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(4 * time.Second) // the outbox polls every second
	for {
		mu.Lock()
		n, tried := got["/new"], got["/old"]
		mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the queued push reached the new upstream %d times in 4 s (the old one %d times)", n, tried)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// retryEvery100ms makes the outboxes of t retry every 100 ms.
func retryEvery100ms(t *testing.T) {
	saved := deliveryBackoff
	deliveryBackoff = func(int) time.Duration { return 100 * time.Millisecond }
	t.Cleanup(func() { deliveryBackoff = saved })
}

// Caddy cleans up a config replaced by a reload while its requests still
// run. A push whose handler is cleaned up while it reads the push keeps
// the outbox open and is delivered and answered 200, not refused with 503;
// a push begun after the clean-up is refused, even while the first is
// still served; once the first is answered the outbox is let go.
func TestPushServedAcrossItsHandlersCleanupIsTaken(t *testing.T) {
	to, got := pushRecorder(t)
	p := newTestPush(t, "wxcleanup00000001", to)
	if _, err := p.delivery.open(context.Background()); err != nil { // as the wechat app's Start does
		t.Fatal(err)
	}
	refs := func() int { n, _ := outboxes.References(p.delivery.key); return n }
	msg := func(id string) []byte {
		return []byte("<xml><ToUserName><![CDATA[gh_cccccccccccc]]></ToUserName><FromUserName><![CDATA[oUSER0000000000000000000000c]]></FromUserName><CreateTime>" +
			strconv.FormatInt(time.Now().Unix(), 10) + "</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content><MsgId>" + id + "</MsgId></xml>")
	}
	push := wechattest.Push{Token: benchPushToken, AppID: p.AppID, Nonce: "7001"}
	req, err := push.Request("http://caddy/wechat/push", msg("24000000000000000701"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(req.Body)
	pr, pw := io.Pipe()
	req.Body = pr
	w := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer pr.CloseWithError(io.ErrUnexpectedEOF) // a handler that stops reading early fails the write below
		p.ServeHTTP(w, req, nil)
	}()
	if _, err := pw.Write(body[:1]); err != nil { // the handler is reading the push
		t.Fatal(err)
	}
	if err := p.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if n := refs(); n < 1 {
		t.Fatalf("after the clean-up, with a push still read, the outbox has %d holds, want it kept", n)
	}
	push.Nonce = "7002"
	late, err := push.Request("http://caddy/wechat/push", msg("24000000000000000702"))
	if err != nil {
		t.Fatal(err)
	}
	lw := httptest.NewRecorder()
	p.ServeHTTP(lw, late, nil)
	if lw.Code != http.StatusServiceUnavailable {
		t.Fatalf("a push begun after the clean-up: %d %s, want 503", lw.Code, lw.Body)
	}
	go func() {
		pw.Write(body[1:])
		pw.Close()
	}()
	<-done
	if w.Code != http.StatusOK || len(got()) != 1 {
		t.Fatalf("a push read during its handler's clean-up: %d %s, %d deliveries, want 200 and 1", w.Code, w.Body, len(got()))
	}
	deadline := time.Now().Add(5 * time.Second)
	for refs() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the handler still holds the outbox after its last push")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Let go in the background, the outbox writes the delivered push's id
	// record as it stops (and the test's storage can then be removed).
	for {
		names, _ := p.delivery.storage.List(context.Background(), "wechat_auth/outbox_ids/push", false)
		if len(names) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d id record files once the outbox was let go, want 1", len(names))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// configStorage is a storage module without a String method: told apart
// by its configuration.
type configStorage struct {
	certmagic.Storage
	Addr string `json:"addr"`
}

func TestStorageIDTellsStoragesApart(t *testing.T) {
	a1 := storageID(&certmagic.FileStorage{Path: "/srv/a"})
	if a1 != storageID(&certmagic.FileStorage{Path: "/srv/a"}) || a1 == storageID(&certmagic.FileStorage{Path: "/srv/b"}) {
		t.Errorf("file_system storages: %q", a1)
	}
	c1 := storageID(&configStorage{Addr: "redis-1:6379"})
	if c1 != storageID(&configStorage{Addr: "redis-1:6379"}) {
		t.Error("one configuration, provisioned twice (a reload), is two storages")
	}
	if c1 == storageID(&configStorage{Addr: "redis-2:6379"}) {
		t.Error("two configurations of one storage module are one storage")
	}
}
