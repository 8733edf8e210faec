package caddytest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

// With Redis, a web login begun on one instance finishes on another (the
// state is in Redis, not in the instance), its cookie works on both, and a
// logout by cookie on one is honoured by the other.
func TestWebLoginAcrossInstancesWithRedis(t *testing.T) {
	srv := rdsStart(t)
	fake, fakeURL := webFakeWeChat(t)
	fake.AddApp(testAppID, testSecret)
	up := startUpstream(t)
	a, b := multiNew(t, "A", "", ""), multiNew(t, "B", "", "")
	site := fmt.Sprintf(`	wechat_auth {
		app %s %s
		app %s %s
		api_base %s
		signing_key %s
		store redis %s
		web {
			qr_app %s
			return_to %s/ %s/
			open_base %s
		}
	}
	reverse_proxy %s
`, testAppID, testSecret, websiteAppID, webSecret, fakeURL, testSigningKey, srv.URL, websiteAppID, a.Base, b.Base, fakeURL, up.Addr)
	// The site names both instances' addresses, known once both exist.
	for _, m := range []*multiCaddy{a, b} {
		if err := os.WriteFile(filepath.Join(m.dir, "Caddyfile"), []byte(m.Caddyfile("", site)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	multiStartAll(t, a, b)

	// Begun on A; WeChat's redirect is pointed at B. (Cookies ignore the
	// port, so the browser's state cookie reaches B as it would reach
	// another instance behind one host.)
	jar, step := jarClient(t)
	page := step(a.Base + "/wx/web/login?user=ivy")
	back := step(page.Header.Get("Location")).Header.Get("Location")
	if !strings.HasPrefix(back, a.Base+"/wx/web/callback?") {
		t.Fatalf("the login went back to %q", back)
	}
	done := step(b.Base + strings.TrimPrefix(back, a.Base))
	if done.StatusCode != http.StatusFound {
		t.Fatalf("the callback on B: %d %s", done.StatusCode, done.Header.Get("X-Body"))
	}
	v := jarSessionCookie(t, jar, b.Base)
	openid := wechattest.WebOpenID(websiteAppID, "ivy")
	for _, base := range []string{a.Base, b.Base} {
		r := send(t, "GET", base+"/api/me", withCookie(v), "")
		wantStatus(t, r, http.StatusOK)
		wantWebIdentity(t, r.Seen(t), websiteAppID, openid, wechattest.WebUnionID("ivy"))
	}
	// The same callback again, on A, from WeChat's browser (which may
	// lack the state cookie): the state is gone everywhere.
	r := sendNoFollow(t, "GET", back, http.Header{"User-Agent": {weChatUA}}, "")
	body, _ := io.ReadAll(r.Body)
	if r.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "already finished") {
		t.Fatalf("the callback replayed on A: %d %s", r.StatusCode, body)
	}
	wantNoSessionCookie(t, r)

	// A web-view handoff made on A opens on B, and Redis never holds its
	// ticket: whoever reads a dump (a backup, a read-only user) cannot
	// redeem the link within its minute.
	fake.AddCode(testAppID, "handoff-redis", wechattest.User{OpenID: randomOpenID()})
	lr := loginAt(t, a.Base, map[string]string{"code": "handoff-redis"})
	hr := postJSON(t, a.Base+"/wx/web/handoff", lr.Token, map[string]string{"return_to": "/shop"})
	wantStatus(t, hr, http.StatusOK)
	link, _ := hr.Object(t)["url"].(string)
	_, ticket, _ := strings.Cut(link, "ticket=")
	if ticket == "" {
		t.Fatalf("handoff url %q", link)
	}
	rc := srv.Client()
	defer rc.Close()
	if bytes.Contains(rdsDump(t, rc), []byte(ticket)) {
		t.Error("Redis holds the handoff ticket as it is")
	}
	opened := sendNoFollow(t, "GET", b.Base+strings.TrimPrefix(link, a.Base), http.Header{
		"User-Agent": {weChatUA + " miniProgram/wx4f4bc4dec97d474b"}, "Accept": {"text/html"},
		"Sec-Fetch-Site": {"none"}, "Sec-Fetch-Mode": {"navigate"}, "Sec-Fetch-Dest": {"document"},
	}, "")
	if opened.StatusCode != http.StatusFound || len(opened.Header["Set-Cookie"]) == 0 {
		t.Errorf("the handoff link made on A, opened on B: %d, cookies %q", opened.StatusCode, opened.Header["Set-Cookie"])
	}

	wantStatus(t, send(t, "POST", b.Base+"/wx/logout", withCookie(v, "Origin", b.Base), ""), http.StatusNoContent)
	if !within(2*time.Second, func() bool {
		r, err := trySend("GET", a.Base+"/api/me", withCookie(v), "")
		return err == nil && r.Status == http.StatusUnauthorized
	}) {
		t.Fatal("A still accepts the cookie B logged out")
	}
}
