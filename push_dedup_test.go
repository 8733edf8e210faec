package wechatauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/assertion"
	"github.com/caddy-wechat/wechatauth/wechattest"
	"github.com/caddyserver/caddy/v2"
)

// pushRecorder is an upstream keeping every delivery's body.
func pushRecorder(t *testing.T) (string, func() []string) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b))
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/push", func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

func newTestPush(t *testing.T, appid, to string) *Push {
	t.Helper()
	p := &Push{AppID: appid, Token: benchPushToken, DeliveryConfig: DeliveryConfig{To: to}}
	if err := p.Provision(benchContext(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Cleanup() })
	return p
}

func servePlainPush(t *testing.T, p *Push, nonce string, msg []byte) *httptest.ResponseRecorder {
	t.Helper()
	push := wechattest.Push{Token: benchPushToken, AppID: p.AppID, Nonce: nonce}
	req, err := push.Request("http://caddy/wechat/push", msg)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	p.ServeHTTP(w, req, nil)
	return w
}

// TestPushDedupKeepsAppsApart: two apps' handlers share one outbox; a push
// of app B whose MsgId equals one app A pushed before is a new event, and
// delivered.
func TestPushDedupKeepsAppsApart(t *testing.T) {
	to, got := pushRecorder(t)
	a := newTestPush(t, "wxdedupapp00000a", to)
	b := newTestPush(t, "wxdedupapp00000b", to)
	msg := func(to, content string) []byte {
		return []byte("<xml><ToUserName><![CDATA[" + to + "]]></ToUserName><FromUserName><![CDATA[oUSER0000000000000000000000q]]></FromUserName><CreateTime>" +
			strconv.FormatInt(time.Now().Unix(), 10) + "</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[" + content +
			"]]></Content><MsgId>24000000000000000001</MsgId></xml>")
	}
	for i, c := range []struct {
		p    *Push
		body []byte
	}{{a, msg("gh_aaaaaaaaaaaa", "to A")}, {b, msg("gh_bbbbbbbbbbbb", "to B")}} {
		if w := servePlainPush(t, c.p, fmt.Sprint(1000+i), c.body); w.Code != http.StatusOK {
			t.Fatalf("push %d: %d %s", i, w.Code, w.Body)
		}
	}
	if d := got(); len(d) != 2 {
		t.Fatalf("%d deliveries, want 2 (one per app): %q", len(d), d)
	}
	// WeChat's retry of B's push is still recognised.
	if w := servePlainPush(t, b, "1002", msg("gh_bbbbbbbbbbbb", "to B")); w.Code != http.StatusOK || len(got()) != 2 {
		t.Fatalf("B's retry: %d, %d deliveries, want 200 and still 2", w.Code, len(got()))
	}
}

// TestPushWithoutMsgIdDedupsOnlyRetries: two events without a MsgId in the
// same second (third-party platform notices; one user's two events of a
// type) are two events; WeChat's byte-identical retry is not delivered
// again.
func TestPushWithoutMsgIdDedupsOnlyRetries(t *testing.T) {
	to, got := pushRecorder(t)
	p := newTestPush(t, "wxdedupapp00000c", to)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	notice := func(appid string) []byte {
		return []byte("<xml><AppId>wxcomponent00001</AppId><CreateTime>" + ts + "</CreateTime><InfoType>authorized</InfoType><AuthorizerAppid>" +
			appid + "</AuthorizerAppid></xml>")
	}
	steps := []struct {
		nonce string
		body  []byte
		want  int
	}{
		{"2001", notice("wxAUTHORIZER00001"), 1},
		{"2002", notice("wxAUTHORIZER00002"), 2},
		{"2003", notice("wxAUTHORIZER00002"), 2}, // WeChat's retry
	}
	for i, s := range steps {
		if w := servePlainPush(t, p, s.nonce, s.body); w.Code != http.StatusOK {
			t.Fatalf("push %d: %d %s", i, w.Code, w.Body)
		}
		if d := got(); len(d) != s.want {
			t.Fatalf("after push %d: %d deliveries, want %d", i, len(d), s.want)
		}
	}
}

// TestPushWithUnsendableHeaderIsRefused: a verified push whose sender or
// event id holds a CR or LF could never be delivered (its headers would
// be invalid); it is refused 400 and nothing is queued.
func TestPushWithUnsendableHeaderIsRefused(t *testing.T) {
	to, got := pushRecorder(t)
	p := newTestPush(t, "wxheaderapp0000a", to)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	for i, c := range []struct{ from, msgid string }{
		{"oUSER00000000000\r\nX-Evil: 1", "24000000000000000002"},
		{"oUSER0000000000000000000000q", "2400000000\n0000000003"},
		{"oUSER0000000000000000000000q", ""}, // the event below holds a LF
	} {
		body := "<xml><ToUserName><![CDATA[gh_aaaaaaaaaaaa]]></ToUserName><FromUserName><![CDATA[" + c.from +
			"]]></FromUserName><CreateTime>" + ts + "</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe"
		if c.msgid == "" {
			body += "\nX"
		}
		body += "]]></Event>"
		if c.msgid != "" {
			body += "<MsgId><![CDATA[" + c.msgid + "]]></MsgId>"
		}
		body += "</xml>"
		w := servePlainPush(t, p, fmt.Sprint(3000+i), []byte(body))
		if w.Code != http.StatusBadRequest {
			t.Errorf("push %d: %d %s, want 400", i, w.Code, w.Body)
		}
	}
	if d := got(); len(d) != 0 {
		t.Fatalf("%d deliveries, want none", len(d))
	}
}

// TestPushGivingAFieldTwiceIsRefused: a verified push that names its
// sender (or another field the delivery reads) twice would reach the
// upstream with X-WX-OPENID naming one copy and a body whose reader may
// take the other; it is refused 400 and nothing is queued. One copy each
// is delivered.
func TestPushGivingAFieldTwiceIsRefused(t *testing.T) {
	to, got := pushRecorder(t)
	p := newTestPush(t, "wxrepeatapp0000a", to)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	const a, b = "oUSERAAAAAAAAAAAAAAAAAAAAAAAA", "oUSERBBBBBBBBBBBBBBBBBBBBBBBB"
	for i, body := range []string{
		`<xml><ToUserName><![CDATA[gh_aaaaaaaaaaaa]]></ToUserName><FromUserName><![CDATA[` + a + `]]></FromUserName><FromUserName><![CDATA[` + b + `]]></FromUserName><CreateTime>` + ts + `</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content><MsgId>24000000000000000011</MsgId></xml>`,
		`<xml><ToUserName><![CDATA[gh_aaaaaaaaaaaa]]></ToUserName><FromUserName><![CDATA[` + a + `]]></FromUserName><CreateTime>` + ts + `</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content><MsgId>24000000000000000012</MsgId><MsgId>24000000000000000013</MsgId></xml>`,
		`{"ToUserName":"gh_aaaaaaaaaaaa","FromUserName":"` + a + `","FromUserName":"` + b + `","CreateTime":` + ts + `,"MsgType":"text","Content":"hi","MsgId":24000000000000000014}`,
		`{"ToUserName":"gh_aaaaaaaaaaaa","FromUserName":"` + a + `","fromusername":"` + b + `","CreateTime":` + ts + `,"MsgType":"text","Content":"hi","MsgId":24000000000000000015}`,
	} {
		w := servePlainPush(t, p, fmt.Sprint(3100+i), []byte(body))
		if w.Code != http.StatusBadRequest {
			t.Errorf("push %d: %d %s, want 400", i, w.Code, w.Body)
		}
	}
	if d := got(); len(d) != 0 {
		t.Fatalf("%d deliveries, want none", len(d))
	}
	for i, body := range []string{
		`<xml><ToUserName><![CDATA[gh_aaaaaaaaaaaa]]></ToUserName><FromUserName><![CDATA[` + a + `]]></FromUserName><CreateTime>` + ts + `</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content><MsgId>24000000000000000016</MsgId></xml>`,
		`{"ToUserName":"gh_aaaaaaaaaaaa","FromUserName":"` + a + `","CreateTime":` + ts + `,"MsgType":"text","Content":"hi","MsgId":24000000000000000017}`,
	} {
		if w := servePlainPush(t, p, fmt.Sprint(3200+i), []byte(body)); w.Code != http.StatusOK {
			t.Errorf("push with one copy of each field %d: %d %s, want 200", i, w.Code, w.Body)
		}
	}
	if d := got(); len(d) != 2 {
		t.Fatalf("%d deliveries of the well-formed pushes, want 2", len(d))
	}
}

// Two receivers on one store with other settings share its outbox. A push
// the first one queued keeps that receiver's retry_for and assertion,
// whoever retries it: the second one's shorter retry_for does not drop
// it, and no retry goes unsigned.
func TestQueuedPushKeepsItsReceiversSettings(t *testing.T) {
	retryEvery100ms(t)
	var (
		mu       sync.Mutex
		down     = true
		unsigned int
		signed   int
		taken    int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("X-Wx-Assertion") == "" {
			unsigned++
		} else {
			signed++
		}
		if down {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		taken++
	}))
	t.Cleanup(srv.Close)
	a := &Push{AppID: "wxa000000000000001", Token: benchPushToken, DeliveryConfig: DeliveryConfig{To: srv.URL + "/a", Assertion: true}}
	b := &Push{AppID: "wxb000000000000002", Token: benchPushToken, DeliveryConfig: DeliveryConfig{To: srv.URL + "/b", RetryFor: caddy.Duration(300 * time.Millisecond)}}
	for _, p := range []*Push{a, b} {
		if err := p.Provision(benchContext(t)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Cleanup() })
	}
	// b's outbox is open too, as it is once its wechat app starts.
	if _, err := b.delivery.open(context.Background()); err != nil {
		t.Fatal(err)
	}
	msg := []byte(`<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[oUser1]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content><MsgId>4242</MsgId></xml>`)
	if w := servePlainPush(t, a, "n1", msg); w.Code != http.StatusOK {
		t.Fatalf("push: %d %s", w.Code, w.Body)
	}
	time.Sleep(3500 * time.Millisecond) // the outboxes poll every second
	mu.Lock()
	down = false
	s, u := signed, unsigned
	mu.Unlock()
	if s+u < 2 {
		t.Fatalf("only %d attempts in 3.5 s: the test proves nothing", s+u)
	}
	if u != 0 {
		t.Errorf("%d of %d attempts went without the assertion", u, s+u)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		mu.Lock()
		n := taken
		mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the queued push was not delivered once the upstream was back (taken %d times): it was dropped", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// An event queued under a signer that a reload rotated away, or under
// none, is signed by the newest signer its receiver's handlers hold for
// its upstream, not sent unsigned; never by a signer held only for
// another upstream or by another receiver, and a receiver without
// assertion sends its events unsigned even beside one with it.
func TestQueuedEventOfARotatedSignerIsSignedByTheNewOne(t *testing.T) {
	newSigner := func() *assertion.Signer {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s, err := assertion.NewSigner(k, "X-WX-ASSERTION")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	const a, b = "http://10.0.0.1/push", "http://10.0.0.2/push"
	const app, otherApp = "wxa000000000000001", "wxb000000000000002"
	old, cur, other := newSigner(), newSigner(), newSigner()
	p := &pooledOutbox{held: make(map[heldKey]*held)}
	by := func(s *assertion.Signer, to string) deliverySettings {
		return deliverySettings{Assertion: s, Receiver: app, To: to}
	}
	p.hold(by(old, a))
	p.hold(by(cur, a))
	p.hold(by(other, b)) // newer, of another upstream
	p.drop(by(old, a))
	kidOf := func(h http.Header) string {
		got := strings.Join(h[cur.Header()], "")
		if got == "" {
			return ""
		}
		return jwtKid(t, got)
	}
	sign := func(signer, receiver, to string) string {
		h := http.Header{"X-Wx-Openid": {"oUser1"}, "X-Wx-Appid": {app}}
		p.prepare(signer, receiver, to, h)
		return kidOf(h)
	}
	if kid := sign(signerID(old), app, a); kid != cur.Kid() {
		t.Fatalf("the event of the rotated signer: signed with kid %q, want the current signer's %q", kid, cur.Kid())
	}
	// An event queued with no signer (the assertion turned on since, or
	// its receiver moved to this upstream) is signed as the upstream
	// expects now; another receiver's, without assertion, is not.
	if kid := sign("", app, a); kid != cur.Kid() {
		t.Fatalf("an event without a signer: signed with kid %q, want the current signer's %q", kid, cur.Kid())
	}
	if kid := sign("", otherApp, a); kid != "" {
		t.Fatalf("a receiver without assertion: its event signed with kid %q, another receiver's", kid)
	}
	// The event's own signer, held for its upstream, signs it whatever
	// else is; held only for another upstream, it does not.
	if kid := sign(signerID(other), app, b); kid != other.Kid() {
		t.Fatalf("an event of a held signer: signed with kid %q, want %q", kid, other.Kid())
	}
	if kid := sign(signerID(other), app, a); kid != cur.Kid() {
		t.Fatalf("an event moved to %s: signed with kid %q, want that upstream's %q", a, kid, cur.Kid())
	}
	p.drop(by(cur, a))
	if kid := sign(signerID(old), app, a); kid != "" {
		t.Fatalf("signed with kid %q, a signer of another upstream", kid)
	}
}

// jwtKid is the kid of a JWT's header.
func jwtKid(t *testing.T, jwt string) string {
	t.Helper()
	head, _, _ := strings.Cut(jwt, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}
