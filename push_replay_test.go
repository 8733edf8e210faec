package wechatauth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"

	"github.com/caddy-wechat/wechatauth/internal/outbox"
	"github.com/caddy-wechat/wechatauth/internal/redistest"
	"github.com/caddy-wechat/wechatauth/wechattest"
)

// failingStorage is Caddy's storage refusing every write.
type failingStorage struct{ certmagic.Storage }

func (failingStorage) Store(context.Context, string, []byte) error {
	return errors.New("disk full")
}

// TestPlainPushNotTakenIsNotAReplay: a plain-mode push answered 503
// (neither delivered nor queued) leaves no trace in the replay check, so
// WeChat's retry with the same timestamp and nonce is taken, not refused.
func TestPlainPushNotTakenIsNotAReplay(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // connections refused
	ctx := benchContext(t)
	p := &Push{AppID: benchPushApp, Token: benchPushToken, DeliveryConfig: DeliveryConfig{To: down.URL + "/push"}}
	if err := p.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Cleanup()
	p.delivery.storage = failingStorage{ctx.Storage()}

	push := wechattest.Push{Token: benchPushToken, AppID: benchPushApp, Nonce: "12345"}
	msg := push.Text("oUSER0000000000000000000000q", "retry me")
	serve := func() int { return pushStatus(t, p, push, msg) }
	if code := serve(); code != http.StatusServiceUnavailable {
		t.Fatalf("first push: %d, want 503 (the outbox cannot write)", code)
	}
	if code := serve(); code != http.StatusServiceUnavailable {
		t.Fatalf("WeChat's retry: %d, want 503 again, not refused as a replay", code)
	}
}

// pushStatus serves push's POST of msg through p and returns the status.
func pushStatus(t *testing.T, p *Push, push wechattest.Push, msg []byte) int {
	t.Helper()
	req, err := push.Request("http://caddy/wechat/push", msg)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	p.ServeHTTP(w, req, nil)
	return w.Code
}

// TestPlainPushReplayBySplittingDigitsIsRefused: the plain-mode signature
// hashes token, timestamp and nonce sorted and joined without separators,
// so moving digits between timestamp and nonce keeps the signature; such
// a replay, with any body, is refused, with max_age and without.
func TestPlainPushReplayBySplittingDigitsIsRefused(t *testing.T) {
	to, got := pushRecorder(t)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	msg := func(content string) []byte {
		return []byte("<xml><ToUserName><![CDATA[gh_aaaaaaaaaaaa]]></ToUserName><FromUserName><![CDATA[oUSER0000000000000000000000q]]></FromUserName><CreateTime>" +
			ts + "</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[" + content + "]]></Content></xml>")
	}
	serve := func(p *Push, ts, nonce string, body []byte) int {
		return pushStatus(t, p, wechattest.Push{Token: benchPushToken, AppID: p.AppID, Timestamp: ts, Nonce: nonce}, body)
	}
	// max_age 5m: a leading zero moved from the nonce to the timestamp.
	p := newTestPush(t, "wxreplayapp0000a", to)
	if code := serve(p, ts, "0123450", msg("first")); code != http.StatusOK {
		t.Fatalf("first push: %d", code)
	}
	if code := serve(p, "0"+ts, "012345", msg("forged")); code != http.StatusForbidden {
		t.Fatalf("replay as (0+ts, nonce minus a 0): %d, want 403", code)
	}
	// max_age 0: the timestamp is not read, any split works.
	zero := caddy.Duration(0)
	q := &Push{AppID: "wxreplayapp0000b", Token: benchPushToken, MaxAge: &zero, DeliveryConfig: DeliveryConfig{To: to}}
	if err := q.Provision(benchContext(t)); err != nil {
		t.Fatal(err)
	}
	defer q.Cleanup()
	if code := serve(q, "2"+ts, "1", msg("second")); code != http.StatusOK {
		t.Fatalf("first push (max_age 0): %d", code)
	}
	if code := serve(q, "12"+ts[:1], ts[1:], msg("forged")); code != http.StatusForbidden {
		t.Fatalf("replay re-split (max_age 0): %d, want 403", code)
	}
	if d := got(); len(d) != 2 {
		t.Fatalf("%d deliveries, want 2: %q", len(d), d)
	}
}

// TestPlainPushURLCheckPairIsNotReusable: a plain-mode URL check is
// signed as a plain-mode POST with the same (timestamp, nonce) is, and its
// URL may be read wherever it was logged; a POST reusing that pair, with
// any body, is refused and delivers nothing. The check itself is judged
// by its signature alone: repeated, it is answered again.
func TestPlainPushURLCheckPairIsNotReusable(t *testing.T) {
	to, got := pushRecorder(t)
	p := newTestPush(t, "wxurlcheckapp00a", to)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	push := wechattest.Push{Token: benchPushToken, AppID: p.AppID, Timestamp: ts, Nonce: "5550001"}
	for i := range 2 {
		req, err := push.URLCheck("http://caddy/wechat/push", "42")
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		p.ServeHTTP(w, req, nil)
		if w.Code != http.StatusOK || w.Body.String() != "42" {
			t.Fatalf("URL check %d: %d %q", i+1, w.Code, w.Body)
		}
	}
	if code := pushStatus(t, p, push, push.Text("oVICTIM000000000000000000000", "forged")); code != http.StatusForbidden {
		t.Fatalf("a POST with the URL check's (timestamp, nonce): %d, want 403", code)
	}
	own := push
	own.Nonce = "5550002"
	if code := pushStatus(t, p, own, push.Text("oUSER0000000000000000000000q", "real")); code != http.StatusOK {
		t.Fatalf("a POST with a pair of its own: %d", code)
	}
	if d := got(); len(d) != 1 || !strings.Contains(d[0], "real") {
		t.Fatalf("deliveries %q, want the real push alone", d)
	}
}

// TestPlainPushSameBodyRetryNeverClearsTheReplayCheck: WeChat's retry of a
// plain-mode push (same signature, same body) goes on to the outbox; one
// answered 503 because the first is still being delivered must not clear
// the signature from the seen set, or a forged body under the same
// signature would then pass as new.
func TestPlainPushSameBodyRetryNeverClearsTheReplayCheck(t *testing.T) {
	up, arrived, release := holdingUpstream(t)
	p := newTestPush(t, "wxreplayapp0000c", up.URL+"/push")
	msg := []byte("<xml><ToUserName><![CDATA[gh_aaaaaaaaaaaa]]></ToUserName><FromUserName><![CDATA[oUSER0000000000000000000000u]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[genuine]]></Content><MsgId>4000000000000000001</MsgId></xml>")
	push := wechattest.Push{Token: benchPushToken, AppID: p.AppID, Nonce: "555", Timestamp: strconv.FormatInt(time.Now().Unix(), 10)}
	serve := func(body []byte) int {
		req, err := push.Request("http://caddy/wechat/push", body)
		if err != nil {
			panic(err)
		}
		w := httptest.NewRecorder()
		p.ServeHTTP(w, req, nil)
		return w.Code
	}
	first := make(chan int, 1)
	go func() { first <- serve(msg) }() // its delivery waits on release
	<-arrived
	// The first push is answered before the test ends, so that the
	// handler's clean-up finds no request in flight.
	defer func() { close(release); <-first }()
	if code := serve(msg); code != http.StatusServiceUnavailable {
		t.Fatalf("the same push while the first is delivered: %d, want 503", code)
	}
	forged := []byte(strings.Replace(string(msg), "genuine", "forged", 1))
	if code := serve(forged); code != http.StatusForbidden {
		t.Fatalf("another body under the same signature: %d, want 403", code)
	}
}

// TestURLCheckPairIsClosedWhileTheRecordsAreUnread: a URL check answered
// before the memory store's records could be read (a failing disk at
// start) still closes its pair, here and in the storage: a POST with it
// after the records are read is refused, not taken as new.
func TestURLCheckPairIsClosedWhileTheRecordsAreUnread(t *testing.T) {
	ctx := context.Background()
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	ob := outbox.New(outbox.StorageStore(storage, "wechat_auth/outbox/push", nil), outbox.Config{})
	p := &pooledOutbox{ob: ob, seen: make(map[string]sighting)}
	// Not started yet: no record has been read.
	if _, err := ob.Remembered("k"); !errors.Is(err, outbox.ErrUnread) {
		t.Fatalf("Remembered before the first read: %v, want ErrUnread", err)
	}
	if err := p.settle(ctx, "k", time.Minute); err != nil {
		t.Fatalf("a URL check's pair while unread: %v", err)
	}
	if err := ob.Start(); err != nil {
		t.Fatal(err)
	}
	if first, same, err := p.sight(ctx, "k", "0123abcd", time.Minute); first || same || err != nil {
		t.Fatalf("a POST with the check's pair: first %v, same %v, %v; want seen with another value", first, same, err)
	}
	if err := ob.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	next := outbox.New(outbox.StorageStore(storage, "wechat_auth/outbox/push", nil), outbox.Config{})
	if err := next.Start(); err != nil {
		t.Fatal(err)
	}
	defer next.Stop(ctx)
	if ok, err := next.Remembered("k"); !ok || err != nil {
		t.Fatalf("after a restart the check's pair is remembered: %v, %v; want true", ok, err)
	}
}

// TestSettleRecordsAPairTheFailedFirstTryForgot: a plain-mode push whose
// first try fails forgets its pair (unsee) while WeChat's retry of it,
// let through as the same body, is taken; the retry's settle must record
// the pair as answered, or a forged body could use it next.
func TestSettleRecordsAPairTheFailedFirstTryForgot(t *testing.T) {
	ctx := context.Background()
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	ob := outbox.New(outbox.StorageStore(storage, "wechat_auth/outbox/push", nil), outbox.Config{})
	if err := ob.Start(); err != nil {
		t.Fatal(err)
	}
	defer ob.Stop(ctx)
	rds := redistest.Start(t)
	for name, p := range map[string]*pooledOutbox{
		"memory": {ob: ob, seen: make(map[string]sighting)},
		"redis":  {client: rds.Client()},
	} {
		t.Run(name, func(t *testing.T) {
			const key, body = "push:plain:wx1:sig:settle", "0123abcd"
			if first, _, err := p.sight(ctx, key, body, time.Minute); !first || err != nil {
				t.Fatalf("first try: first %v, %v", first, err)
			}
			if first, same, _ := p.sight(ctx, key, body, time.Minute); first || !same {
				t.Fatal("WeChat's retry with the same body is not let through")
			}
			if err := p.forget(ctx, key); err != nil { // the first try failed
				t.Fatal(err)
			}
			if err := p.settle(ctx, key, time.Minute); err != nil { // the retry was taken
				t.Fatal(err)
			}
			if first, same, err := p.sight(ctx, key, "ffff0000", time.Minute); first || same || err != nil {
				t.Fatalf("a forged body with the pair: first %v, same %v, %v; want refused", first, same, err)
			}
		})
	}
}

// TestASafeReceiversSignatureSignsNoBodyForAPlainTwin: with a plain-mode
// receiver of the same token beside a safe-mode one (a move between the
// two, say), the signature on the safe receiver's push or URL check
// (access logs hold it) is also a plain-mode signature: a forged body sent
// with it to the plain receiver is refused, for as long as the plain
// receiver's own window (here max_age 0: a day), whatever the safe one's.
// The same holds between plain receivers of two apps sharing a token, and
// for a plain receiver whose seen set is in another store.
func TestASafeReceiversSignatureSignsNoBodyForAPlainTwin(t *testing.T) {
	to, got := pushRecorder(t)
	ctx := benchContext(t)
	provision := func(p *Push) *Push {
		if err := p.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Cleanup() })
		return p
	}
	short, zero := caddy.Duration(time.Minute), caddy.Duration(0)
	safe := provision(&Push{AppID: benchPushApp, Token: benchPushToken, AESKey: benchPushKey, MaxAge: &short, DeliveryConfig: DeliveryConfig{To: to}})
	plain := provision(&Push{AppID: benchPushApp, Token: benchPushToken, MaxAge: &zero, DeliveryConfig: DeliveryConfig{To: to}})
	other := provision(&Push{AppID: "wxotherapp000001", Token: benchPushToken, DeliveryConfig: DeliveryConfig{To: to}})
	rds := redistest.Start(t)
	elsewhere := provision(&Push{AppID: "wxotherapp000002", Token: benchPushToken, DeliveryConfig: DeliveryConfig{To: to, Store: "redis://" + rds.Addr}})
	// Three minutes old: past the safe receiver's max_age, within the
	// plain one's (none).
	ts := strconv.FormatInt(time.Now().Add(-3*time.Minute).Unix(), 10)
	forge := func(at *Push, ts, nonce string) int {
		p := wechattest.Push{Token: benchPushToken, AppID: at.AppID, Timestamp: ts, Nonce: nonce}
		return pushStatus(t, at, p, p.Text("oVICTIM000000000000000000000", "forged"))
	}

	real := wechattest.Push{Token: benchPushToken, AESKey: benchPushKey, AppID: benchPushApp, Safe: true, Timestamp: ts, Nonce: "7770001"}
	if code := pushStatus(t, safe, real, real.Text("oUSER0000000000000000000000q", "real")); code != http.StatusOK {
		t.Fatalf("the safe-mode push: %d", code)
	}
	if code := forge(plain, ts, "7770001"); code != http.StatusForbidden {
		t.Errorf("the safe push's signature on a forged plain body: %d, want 403", code)
	}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	check := wechattest.Push{Token: benchPushToken, AppID: benchPushApp, Timestamp: now, Nonce: "7770002"}
	req, err := check.URLCheck("http://caddy/wechat/push", "42")
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	safe.ServeHTTP(w, req, nil)
	if w.Code != http.StatusOK || w.Body.String() != "42" {
		t.Fatalf("the safe receiver's URL check: %d %q", w.Code, w.Body)
	}
	if code := forge(plain, now, "7770002"); code != http.StatusForbidden {
		t.Errorf("the safe receiver's URL check signature on a forged plain body: %d, want 403", code)
	}
	if code := forge(other, now, "7770002"); code != http.StatusForbidden {
		t.Errorf("the same signature at the plain receiver of another app: %d, want 403", code)
	}
	// A plain receiver keeping its seen set elsewhere (Redis): the pair
	// is closed in its store.
	if code := forge(elsewhere, now, "7770002"); code != http.StatusForbidden {
		t.Errorf("the same signature at a plain receiver on another store: %d, want 403", code)
	}
	// A plain push to one app's receiver: its signature signs nothing at
	// the other's.
	own := wechattest.Push{Token: benchPushToken, AppID: benchPushApp, Timestamp: now, Nonce: "7770003"}
	if code := pushStatus(t, plain, own, own.Text("oUSER0000000000000000000000q", "plain real")); code != http.StatusOK {
		t.Fatalf("a plain push with a pair of its own: %d", code)
	}
	if code := forge(other, now, "7770003"); code != http.StatusForbidden {
		t.Errorf("a plain push's signature at the plain receiver of another app: %d, want 403", code)
	}
	if d := got(); len(d) != 2 {
		t.Errorf("%d deliveries, want the real safe push and the real plain one: %q", len(d), d)
	}
}

// Two plain-mode receivers of one app and token (two paths in one config)
// share their seen-set keys already: WeChat's same-body retry of a push
// still being delivered is answered 503 (it retries), not refused as a
// replay the other receiver closed.
func TestPlainRetryIsNotRefusedBecauseOfASameAppTwin(t *testing.T) {
	up, arrived, release := holdingUpstream(t)
	ctx := benchContext(t)
	var ps [2]*Push
	for i := range ps {
		ps[i] = &Push{AppID: "wxreplayapp0000d", Token: benchPushToken, DeliveryConfig: DeliveryConfig{To: up.URL + "/push"}}
		if err := ps[i].Provision(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ps[i].Cleanup() })
	}
	p := ps[0]
	msg := []byte("<xml><ToUserName><![CDATA[gh_aaaaaaaaaaaa]]></ToUserName><FromUserName><![CDATA[oUSER0000000000000000000000u]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[genuine]]></Content><MsgId>4000000000000000002</MsgId></xml>")
	push := wechattest.Push{Token: benchPushToken, AppID: p.AppID, Nonce: "556", Timestamp: strconv.FormatInt(time.Now().Unix(), 10)}
	first := make(chan int, 1)
	go func() { first <- pushStatus(t, p, push, msg) }() // its delivery waits on release
	<-arrived
	defer func() { close(release); <-first }()
	if code := pushStatus(t, p, push, msg); code != http.StatusServiceUnavailable {
		t.Fatalf("WeChat's retry while the first is delivered: %d, want 503", code)
	}
}

// holdingUpstream answers no delivery until release is closed; arrived
// gets a value as each delivery comes in.
func holdingUpstream(t *testing.T) (up *httptest.Server, arrived chan struct{}, release chan struct{}) {
	release = make(chan struct{})
	arrived = make(chan struct{}, 4)
	up = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
	}))
	t.Cleanup(up.Close)
	return up, arrived, release
}
