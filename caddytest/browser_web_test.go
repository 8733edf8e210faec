package caddytest

// wechat_auth's web login in a real headless Chromium, against Caddy and
// the fake WeChat (its authorize and qrconnect pages at open_base, the
// code exchange at api_base). Proved here:
//   - inside WeChat (MicroMessenger) the browser goes through the Official
//     Account's authorize page with snsapi_base, outside through the website
//     app's qrconnect with snsapi_login; the fake sees the app, scope,
//     the site's callback and a state of <= 128 [A-Za-z0-9]; the browser ends
//     on return_to and the upstream sees the user's openid, the web app, the
//     unionid and X-WX-SOURCE: wx_web, and never the session cookie;
//   - the cookie is HttpOnly, SameSite=Lax, Path=/, unreadable by script,
//     holds no openid; the state cookie is gone after the callback;
//   - forged identity headers never reach the upstream on a cookie session;
//   - unknown, reused and foreign states, bad return_to, a declined
//     authorization and a snapshot user make no session;
//   - cookie writes from another origin get 403 csrf_refused, the site's own
//     pass, Bearer writes are unaffected; logout clears the cookie and the
//     old value gets 401;
//   - the web-view handoff link holds no token or openid and works once;
//   - WeChat's OAuth access token is in no answer, cookie or log line;
//   - over HTTPS the cookie is Secure and named __Host-wx_session; two
//     logins begun in one browser each keep their state cookie; the
//     sandbox serves WeChat's pages itself.

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/weblogin"
	"github.com/caddy-wechat/wechatauth/wechattest"
	"github.com/chromedp/cdproto/network"
)

// miniProgramWebViewUA is the User-Agent of a mini program's <web-view>:
// WeChat's browser, with "miniProgram" added.
const miniProgramWebViewUA = weChatUA + " miniProgram/wx4f4bc4dec97d474b"

// webStack is a stack whose wechat_auth logs in the mini program
// testAppID and, on the web through the fake's pages, oaAppID inside
// WeChat and websiteAppID outside; return_to is the site. extra goes into
// the web block.
func webStack(t *testing.T, global, extra string) *stack {
	t.Helper()
	return startStack(t, stackConfig{
		Apps:   []testApp{{testAppID, testSecret}, {oaAppID, webSecret}, {websiteAppID, webSecret}},
		Global: global,
		DirectiveOf: func(st *stack) string {
			return "\t\tweb {\n\t\t\toa_app " + oaAppID + "\n\t\t\tqr_app " + websiteAppID +
				"\n\t\t\treturn_to " + siteBase + "/\n\t\t\topen_base " + st.WeChatURL + "\n" + extra + "\t\t}\n"
		},
	})
}

// handoffLink asks for a web-view handoff link to returnTo for the mini
// program user whose token it is.
func handoffLink(t *testing.T, token, returnTo string) string {
	t.Helper()
	r := postJSON(t, siteBase+"/wx/web/handoff", token, map[string]string{"return_to": returnTo})
	wantStatus(t, r, http.StatusOK)
	u, _ := r.Object(t)["url"].(string)
	return u
}

// noRedirects is a client that shows redirects instead of following them.
var noRedirects = &http.Client{
	Transport:     httpClient.Transport,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func sendNoFollow(t *testing.T, method, u string, header http.Header, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// browserLogin logs a fresh tab (userAgent) in as user through a link on
// another site to /wx/web/login, and waits until it is on returnTo.
func browserLogin(t *testing.T, br *browser, userAgent, user, returnTo string) *tab {
	t.Helper()
	tb := br.tab(t, userAgent)
	clickThrough(t, tb, siteBase+"/wx/web/login?user="+user+"&return_to="+url.QueryEscape(returnTo))
	tb.waitURL(t, siteBase+returnTo)
	return tb
}

// sessionCookie returns the tab's session cookie, which must be there.
func sessionCookie(t *testing.T, tb *tab) *network.Cookie {
	t.Helper()
	c := tb.cookie(t, siteBase+"/", weblogin.SessionCookieHTTP)
	if c == nil {
		t.Fatalf("no %s cookie; cookies: %+v", weblogin.SessionCookieHTTP, tb.cookies(t, siteBase+"/"))
	}
	return c
}

// withCookie is a header carrying the session cookie value v.
func withCookie(v string, more ...string) http.Header {
	h := http.Header{"Cookie": {"theme=dark; " + weblogin.SessionCookieHTTP + "=" + v}}
	for i := 0; i+1 < len(more); i += 2 {
		h.Set(more[i], more[i+1])
	}
	return h
}

// wantWebIdentity checks what the upstream saw: the user of appid, from
// the web, without the session cookie.
func wantWebIdentity(t *testing.T, seen seenRequest, appid, openid, unionid string) {
	t.Helper()
	h := seen.Header
	if h.Get("X-Wx-Openid") != openid || h.Get("X-Wx-Appid") != appid || h.Get("X-Wx-Unionid") != unionid || h.Get("X-Wx-Source") != "wx_web" {
		t.Fatalf("the upstream saw openid %q appid %q unionid %q source %q; want %q %q %q wx_web",
			h.Get("X-Wx-Openid"), h.Get("X-Wx-Appid"), h.Get("X-Wx-Unionid"), h.Get("X-Wx-Source"), openid, appid, unionid)
	}
	if c := strings.Join(h.Values("Cookie"), "; "); strings.Contains(c, weblogin.SessionCookieHTTP) || strings.Contains(c, "wx_state") {
		t.Fatalf("the upstream got Caddy's cookies: %q", c)
	}
	if h.Get("Authorization") != "" {
		t.Fatalf("the upstream got Authorization %q", h.Get("Authorization"))
	}
}

// wantNoSessionCookie fails when an answer sets a session cookie.
func wantNoSessionCookie(t *testing.T, resp *http.Response) {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == weblogin.SessionCookieHTTP && c.Value != "" {
			t.Fatalf("a session cookie was set: %v", c)
		}
	}
}

func TestWebLoginInsideWeChat(t *testing.T) {
	st := webStack(t, "", "")
	br := startBrowser(t)
	tb := browserLogin(t, br, weChatUA, "alice", "/app/orders")

	openid := wechattest.WebOpenID(oaAppID, "alice")
	checkAuthorize(t, st.WeChat, wechattest.PathOAuthAuthorize, oaAppID, "snsapi_base", siteBase+"/wx/web/callback", "alice")
	wantWebIdentity(t, st.Upstream.Last(t), oaAppID, openid, wechattest.WebUnionID("alice"))
	if text := tb.text(t); !strings.Contains(text, openid) {
		t.Fatalf("the page (the upstream's echo) shows %q", text)
	}

	c := sessionCookie(t, tb)
	if !c.HTTPOnly || c.SameSite != "Lax" || c.Path != "/" || c.Secure || c.Session {
		t.Fatalf("cookie attributes: HttpOnly %v SameSite %q Path %q Secure %v Session %v", c.HTTPOnly, c.SameSite, c.Path, c.Secure, c.Session)
	}
	if strings.Contains(c.Value, openid) || strings.Contains(c.Value, "alice") {
		t.Fatalf("the cookie value %q reveals the user", c.Value)
	}
	if js := tb.eval(t, `document.cookie`); strings.Contains(js, weblogin.SessionCookieHTTP) {
		t.Fatalf("script reads the session cookie: %q", js)
	}
	for _, k := range tb.cookies(t, siteBase+"/") {
		if strings.HasPrefix(k.Name, "wx_state") {
			t.Fatalf("the state cookie outlived the callback: %+v", k)
		}
	}

	// A client's own identity headers never reach the upstream.
	r := send(t, "GET", siteBase+"/api/me", withCookie(c.Value, "X-WX-OPENID", "forged", "X-Wx-Source", "wx_client"), "")
	wantStatus(t, r, http.StatusOK)
	wantWebIdentity(t, r.Seen(t), oaAppID, openid, wechattest.WebUnionID("alice"))
	if got := r.Seen(t).Header.Values("Cookie"); len(got) != 1 || got[0] != "theme=dark" {
		t.Fatalf("the upstream's Cookie header is %q, want the site's own cookie only", got)
	}

	// WeChat's browser loading the callback again makes no session.
	state := st.WeChat.AuthorizeRequests()[0].State
	resp := sendNoFollow(t, "GET", siteBase+"/wx/web/callback?code=0a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P&state="+state, http.Header{"User-Agent": {weChatUA}}, "")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a replayed callback: status %d", resp.StatusCode)
	}
	wantNoSessionCookie(t, resp)
}

// A hash-routed page gives return_to with its own fragment: the browser
// ends on that route, not on the #wechat_redirect of WeChat's page, which
// it carries over a redirect without a fragment of its own.
func TestWebLoginReturnToKeepsItsOwnFragment(t *testing.T) {
	webStack(t, "", "")
	br := startBrowser(t)
	tb := browserLogin(t, br, weChatUA, "amy", "/app/#/orders")
	if hash := tb.eval(t, `location.hash`); hash != "#/orders" {
		t.Fatalf("the login ended on %q, hash %q, want the page's route #/orders", tb.url(t), hash)
	}
}

func TestWebLoginQRConnect(t *testing.T) {
	st := webStack(t, "", "")
	br := startBrowser(t)
	tb := browserLogin(t, br, "", "bob", "/dashboard")

	checkAuthorize(t, st.WeChat, wechattest.PathQRConnect, websiteAppID, "snsapi_login", siteBase+"/wx/web/callback", "bob")
	openid := wechattest.WebOpenID(websiteAppID, "bob")
	wantWebIdentity(t, st.Upstream.Last(t), websiteAppID, openid, wechattest.WebUnionID("bob"))
	c := sessionCookie(t, tb)
	if !c.HTTPOnly || c.SameSite != "Lax" || c.Path != "/" || strings.Contains(c.Value, openid) {
		t.Fatalf("cookie %+v", c)
	}
	// The same person inside WeChat: another openid, the same unionid.
	browserLogin(t, br, weChatUA, "bob", "/dashboard")
	wantWebIdentity(t, st.Upstream.Last(t), oaAppID, wechattest.WebOpenID(oaAppID, "bob"), wechattest.WebUnionID("bob"))
}

func TestWebLoginRefusals(t *testing.T) {
	st := webStack(t, "", "")
	br := startBrowser(t)

	// In the browser: an error page, the JSON error in it, and no session.
	for _, tt := range []struct {
		name, query, status, code string
		snapshot                  bool
	}{
		{"declined", "decline=1", "403", "access_denied", false},
		{"snapshot user", "user=carol", "403", "snapshot_user", true},
		{"return_to scheme-relative", "return_to=//evil.example/", "400", "invalid_request", false},
		{"return_to user info", "return_to=" + url.QueryEscape("http://localhost:9080@evil.example/"), "400", "invalid_request", false},
		{"return_to at", "return_to=@evil.example", "400", "invalid_request", false},
		{"return_to javascript", "return_to=javascript:alert(1)", "400", "invalid_request", false},
		{"return_to other host", "return_to=" + url.QueryEscape("http://evil.example/"), "400", "invalid_request", false},
		// A login must not end by opening another one's link.
		{"return_to a handoff link", "return_to=" + url.QueryEscape("/wx/web/handoff?ticket=Attacker0Ticket"), "400", "invalid_request", false},
		{"return_to a handoff link encoded", "return_to=" + url.QueryEscape("/wx/%77eb/handoff?ticket=Attacker0Ticket"), "400", "invalid_request", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st.WeChat.SetSnapshotUsers(tt.snapshot)
			defer st.WeChat.SetSnapshotUsers(false)
			tb := br.tab(t, weChatUA)
			tb.navigate(t, siteBase+"/wx/web/login?"+tt.query)
			if text := tb.text(t); !strings.Contains(text, `"error":"`+tt.code+`"`) || !strings.Contains(text, "Login not completed") {
				t.Fatalf("the page shows %q, want an error page for %s", text, tt.code)
			}
			if u := tb.url(t); !strings.HasPrefix(u, siteBase+"/wx/web/") {
				t.Fatalf("the browser left for %q", u)
			}
			if c := tb.cookie(t, siteBase+"/", weblogin.SessionCookieHTTP); c != nil {
				t.Fatalf("a session cookie was set: %+v", c)
			}
		})
	}

	// Unknown state, malformed state, and a state begun in another
	// browser (this one holds a state cookie of its own).
	resp := sendNoFollow(t, "GET", siteBase+"/wx/web/callback?code=abc&state=Unknown0State0000000000000000000", nil, "")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown state: %d", resp.StatusCode)
	}
	resp = sendNoFollow(t, "GET", siteBase+"/wx/web/callback?code=abc&state=bad-state!", nil, "")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("malformed state: %d", resp.StatusCode)
	}
	// The attacker's own login, stopped at the callback.
	start := sendNoFollow(t, "GET", siteBase+"/wx/web/login?user=mallory", nil, "")
	page := sendNoFollow(t, "GET", start.Header.Get("Location"), nil, "")
	callback := page.Header.Get("Location")
	if !strings.HasPrefix(callback, siteBase+"/wx/web/callback?") {
		t.Fatalf("the attacker's login went to %q", callback)
	}
	victim := br.tab(t, "")
	victim.navigate(t, callback)
	if text := victim.text(t); !strings.Contains(text, "another browser") {
		t.Fatalf("a foreign state shows %q", text)
	}
	if c := victim.cookie(t, siteBase+"/", weblogin.SessionCookieHTTP); c != nil {
		t.Fatalf("a foreign state made a session: %+v", c)
	}
}

func TestWebCookieCSRFAndLogout(t *testing.T) {
	st := webStack(t, "", "")
	br := startBrowser(t)
	tb := browserLogin(t, br, "", "dave", "/")
	v := sessionCookie(t, tb).Value
	openid := wechattest.WebOpenID(websiteAppID, "dave")

	n := st.Upstream.CountOf("POST", "/api/orders")
	r := send(t, "POST", siteBase+"/api/orders", withCookie(v, "Origin", "http://evil.example", "Content-Type", "application/json"), "{}")
	wantError(t, r, http.StatusForbidden, "csrf_refused")
	r = send(t, "POST", siteBase+"/api/orders", withCookie(v, "Content-Type", "application/json"), "{}")
	wantError(t, r, http.StatusForbidden, "csrf_refused") // neither Origin nor Referer
	if st.Upstream.CountOf("POST", "/api/orders") != n {
		t.Fatal("a refused write reached the upstream")
	}
	r = send(t, "POST", siteBase+"/api/orders", withCookie(v, "Origin", siteBase, "Content-Type", "application/json"), "{}")
	wantStatus(t, r, http.StatusOK)
	wantWebIdentity(t, r.Seen(t), websiteAppID, openid, wechattest.WebUnionID("dave"))
	r = send(t, "DELETE", siteBase+"/api/orders/1", withCookie(v, "Referer", siteBase+"/orders"), "")
	wantStatus(t, r, http.StatusOK)

	// The same write from the page in the browser: fetch sends its Origin.
	status := tb.eval(t, `(() => { const x = new XMLHttpRequest(); x.open("POST", "/api/orders", false); x.send("{}"); return String(x.status); })()`)
	if status != "200" {
		t.Fatalf("the site's own page posting: %s", status)
	}

	// Bearer requests know nothing of CSRF.
	st.addUser("csrf-mini")
	tok := st.login(t, "csrf-mini").Token
	h := bearer(tok)
	h.Set("Origin", "http://evil.example")
	r = send(t, "POST", siteBase+"/api/orders", h, "{}")
	wantStatus(t, r, http.StatusOK)
	if r.Seen(t).Header.Get("X-Wx-Source") != "wx_client" {
		t.Fatalf("a Bearer request's source: %q", r.Seen(t).Header.Get("X-Wx-Source"))
	}

	// Logout from another site is refused; from the site it clears the
	// cookie, and the old value is dead everywhere.
	r = send(t, "POST", siteBase+"/wx/logout", withCookie(v, "Origin", "http://evil.example"), "")
	wantError(t, r, http.StatusForbidden, "csrf_refused")
	r = send(t, "POST", siteBase+"/wx/logout", withCookie(v, "Origin", siteBase), "")
	wantStatus(t, r, http.StatusNoContent)
	cleared := false
	for _, line := range r.Header.Values("Set-Cookie") {
		if strings.HasPrefix(line, weblogin.SessionCookieHTTP+"=;") && strings.Contains(line, "Max-Age=0") {
			cleared = true
		}
	}
	if !cleared {
		t.Fatalf("logout did not clear the cookie: %q", r.Header.Values("Set-Cookie"))
	}
	if got := r.Header.Get("Clear-Site-Data"); got != `"cache"` {
		t.Errorf("logout's Clear-Site-Data: %q, want \"cache\" (the back/forward cache keeps logged-in pages)", got)
	}
	r = send(t, "GET", siteBase+"/api/me", withCookie(v), "")
	wantError(t, r, http.StatusUnauthorized, "invalid_token")

	// In the browser: logout from the page, then the page is refused.
	tb2 := browserLogin(t, br, "", "erin", "/")
	status = tb2.eval(t, `(() => { const x = new XMLHttpRequest(); x.open("POST", "/wx/logout", false); x.send(); return String(x.status); })()`)
	if status != "204" {
		t.Fatalf("logout from the page: %s", status)
	}
	if c := tb2.cookie(t, siteBase+"/", weblogin.SessionCookieHTTP); c != nil {
		t.Fatalf("the cookie outlived logout: %+v", c)
	}
	tb2.navigate(t, siteBase+"/api/me")
	if text := tb2.text(t); !strings.Contains(text, `"unauthorized"`) {
		t.Fatalf("after logout the page shows %q", text)
	}
}

func TestWebViewHandoff(t *testing.T) {
	st := webStack(t, "", "")
	user := st.addUser("handoff-mini")
	lr := st.login(t, "handoff-mini")

	link := handoffLink(t, lr.Token, "/shop/cart")
	if !strings.HasPrefix(link, siteBase+"/wx/web/handoff?") {
		t.Fatalf("handoff url %q", link)
	}
	for _, secret := range []string{lr.Token, user.OpenID, strings.Split(lr.Token, ".")[1]} {
		if strings.Contains(link, secret) {
			t.Fatalf("the handoff url %q holds the token or the openid", link)
		}
	}
	// Without a token, or with a return_to elsewhere: refused.
	wantStatus(t, postJSON(t, siteBase+"/wx/web/handoff", "", map[string]string{"return_to": "/"}), http.StatusUnauthorized)
	wantError(t, postJSON(t, siteBase+"/wx/web/handoff", lr.Token, map[string]string{"return_to": "https://evil.example/"}), http.StatusBadRequest, "invalid_request")
	wantError(t, postJSON(t, siteBase+"/wx/web/handoff", lr.Token, map[string]string{"return_to": "/wx/web/login?return_to=/"}), http.StatusBadRequest, "invalid_request")

	br := startBrowser(t)
	tb := br.tab(t, miniProgramWebViewUA)
	tb.navigate(t, link)
	tb.waitURL(t, siteBase+"/shop/cart")
	seen := st.Upstream.Last(t)
	wantWebIdentity(t, seen, testAppID, user.OpenID, seen.Header.Get("X-Wx-Unionid"))
	sessionCookie(t, tb)

	// A second use, in another web-view: refused, no session.
	tb2 := br.tab(t, miniProgramWebViewUA)
	tb2.navigate(t, link)
	if text := tb2.text(t); !strings.Contains(text, "already used") {
		t.Fatalf("a second use shows %q", text)
	}
	if c := tb2.cookie(t, siteBase+"/", weblogin.SessionCookieHTTP); c != nil {
		t.Fatalf("a second use made a session: %+v", c)
	}
}

// A handoff link is a login link anyone can make for himself. A browser
// outside the mini program's web-view that another site led to one (a
// link clicked there, or a redirect from a link sent by chat) is asked
// first, and keeps the session it had; a form another site posts to it is
// refused. The person who asked continues with one click, and the
// web-view opens the link at once.
func TestWebViewHandoffLoginCSRF(t *testing.T) {
	st := webStack(t, "", "")
	st.addUser("handoff-attacker")
	attacker := st.login(t, "handoff-attacker")
	attackerOpenID := attacker.OpenID
	link := func() string { return handoffLink(t, attacker.Token, "/account") }
	br := startBrowser(t)
	victim := browserLogin(t, br, "", "victim", "/account")
	victimOpenID := wechattest.WebOpenID(websiteAppID, "victim")
	stillVictim := func(how string) {
		t.Helper()
		victim.navigate(t, siteBase+"/account")
		if got := st.Upstream.Last(t).Header.Get("X-Wx-Openid"); got != victimOpenID {
			t.Fatalf("%s: the victim's browser is now %q, want %q", how, got, victimOpenID)
		}
	}
	// The attacker's page is on 127.0.0.1, another site than localhost.
	evil := func(page func(w http.ResponseWriter, r *http.Request)) string {
		srv := httptest.NewServer(http.HandlerFunc(page))
		t.Cleanup(srv.Close)
		return srv.URL
	}

	for _, rel := range []string{"", "noreferrer"} {
		l := link()
		u := evil(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `<!doctype html><a id="go" rel="%s" href="%s">a prize</a>`, rel, html.EscapeString(l))
		})
		victim.navigate(t, u)
		victim.eval(t, `document.getElementById("go").click(), ""`)
		victim.waitURL(t, l)
		if text := victim.text(t); !strings.Contains(text, "Continue only if you asked") {
			t.Fatalf("link rel %q: the handoff page shows %q", rel, text)
		}
		stillVictim("a link clicked on another site")
		// The ticket is unused: the attacker's web-view opens it.
		wv := br.tab(t, miniProgramWebViewUA)
		wv.navigate(t, l)
		wv.waitURL(t, siteBase+"/account")
	}

	// A link sent by chat to the attacker's site, which redirects: the
	// browser began that navigation itself (Sec-Fetch-Site: none).
	u := evil(func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, link(), http.StatusFound) })
	victim.navigate(t, u)
	victim.waitURL(t, siteBase+"/wx/web/handoff?")
	if text := victim.text(t); !strings.Contains(text, "Continue only if you asked") || !strings.Contains(text, "logged in already") {
		t.Fatalf("redirected, the handoff page shows %q", text)
	}
	stillVictim("a redirect from a link sent by chat")

	// An image, a frame or a script's fetch of the link, on a page of the
	// same site (another port of localhost), logs nobody in.
	l0 := link()
	victim.navigate(t, startPage(t, fmt.Sprintf(`<img src="%s"><iframe src="%s"></iframe><script>fetch(%q, {mode: "no-cors", credentials: "include"})</script>`, html.EscapeString(l0), html.EscapeString(l0), l0)))
	time.Sleep(500 * time.Millisecond)
	stillVictim("an image, a frame and a fetch on a same-site page")
	wv := br.tab(t, miniProgramWebViewUA)
	wv.navigate(t, l0)
	wv.waitURL(t, siteBase+"/account")

	// A form another site posts to the link is refused.
	l := link()
	u = evil(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s"></form><script>document.getElementById("f").submit()</script>`, html.EscapeString(l))
	})
	victim.navigate(t, u)
	victim.waitURL(t, l)
	if text := victim.text(t); !strings.Contains(text, "csrf_refused") {
		t.Fatalf("a form posted from another site: %q", text)
	}
	stillVictim("a form posted from another site")

	// In a web-view too, only a page load opens a link: an image on a
	// same-site page the web-view shows logs its user in as nobody else.
	st.addUser("handoff-victim")
	own := st.login(t, "handoff-victim")
	ownLink := handoffLink(t, own.Token, "/account")
	wvVictim := br.tab(t, miniProgramWebViewUA)
	wvVictim.navigate(t, ownLink)
	wvVictim.waitURL(t, siteBase+"/account")
	l1 := link()
	wvVictim.navigate(t, startPage(t, fmt.Sprintf(`<img src="%s"><script type="speculationrules">{"prefetch":[{"source":"list","urls":[%q]}]}</script>`, html.EscapeString(l1), l1)))
	time.Sleep(500 * time.Millisecond)
	wvVictim.navigate(t, siteBase+"/account")
	if got := st.Upstream.Last(t).Header.Get("X-Wx-Openid"); got != own.OpenID {
		t.Fatalf("an image and a prefetch in a web-view: its user is now %q, want %q", got, own.OpenID)
	}
	// A link on a same-site page the web-view shows, followed: the page
	// asking first, not a login.
	wvVictim.navigate(t, startPage(t, fmt.Sprintf(`<a id="go" href="%s">a prize</a>`, html.EscapeString(l1))))
	wvVictim.eval(t, `document.getElementById("go").click(), ""`)
	wvVictim.waitURL(t, l1)
	if text := wvVictim.text(t); !strings.Contains(text, "Continue only if you asked") {
		t.Fatalf("a link followed in a web-view shows %q", text)
	}
	wvVictim.navigate(t, siteBase+"/account")
	if got := st.Upstream.Last(t).Header.Get("X-Wx-Openid"); got != own.OpenID {
		t.Fatalf("a link followed in a web-view: its user is now %q, want %q", got, own.OpenID)
	}

	// Who asked continues with a click, the button enabled a second after
	// the page shows (a double click's second half finds it disabled), and
	// is the link's user.
	me := br.tab(t, "")
	me.navigate(t, link())
	if got := me.eval(t, `String(document.getElementById("go").disabled)`); got != "true" {
		t.Fatalf("the Continue button is enabled at once (disabled: %s)", got)
	}
	// A stream of clicks keeps it disabled.
	me.eval(t, `window.clicks = setInterval(function(){ dispatchEvent(new PointerEvent("pointerdown")) }, 150), ""`)
	time.Sleep(1500 * time.Millisecond)
	if got := me.eval(t, `clearInterval(window.clicks), String(document.getElementById("go").disabled)`); got != "true" {
		t.Fatalf("the Continue button was enabled during a stream of clicks (disabled: %s)", got)
	}
	time.Sleep(1200 * time.Millisecond)
	me.eval(t, `document.getElementById("go").click(), ""`)
	me.waitURL(t, siteBase+"/account")
	if got := st.Upstream.Last(t).Header.Get("X-Wx-Openid"); got != attackerOpenID {
		t.Fatalf("after Continue the upstream saw %q, want the link's user %q", got, attackerOpenID)
	}
}

// startPage serves body on another port of localhost: a page of the same
// site as siteBase, another origin.
func startPage(t *testing.T, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<!doctype html>"+body)
	}))
	t.Cleanup(srv.Close)
	return strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
}

func TestWebOAuthTokenGoesNowhere(t *testing.T) {
	logPath, logOption := debugLog(t)
	st := webStack(t, logOption, "")
	br := startBrowser(t)
	tb := browserLogin(t, br, weChatUA, "frank", "/")
	toks := st.WeChat.WebAccessTokens()
	if len(toks) != 1 {
		t.Fatalf("the fake issued %d web access tokens", len(toks))
	}
	var everything strings.Builder
	everything.WriteString(readFile(t, logPath))
	for _, c := range tb.cookies(t, siteBase+"/") {
		everything.WriteString(c.Value)
	}
	everything.WriteString(tb.text(t))
	seen, _ := json.Marshal(st.Upstream.Last(t))
	everything.Write(seen)
	if strings.Contains(everything.String(), toks[0]) {
		t.Fatal("WeChat's OAuth access token reached a log, a cookie, a page or the upstream")
	}
	if !strings.Contains(readFile(t, logPath), `"event":"web_login"`) {
		t.Fatal("no web_login audit entry")
	}

	// A logout by cookie is audited with its user.
	v := sessionCookie(t, tb).Value
	wantStatus(t, send(t, "POST", siteBase+"/wx/logout", withCookie(v, "Origin", siteBase), ""), http.StatusNoContent)
	openid := wechattest.WebOpenID(oaAppID, "frank")
	found := false
	for _, line := range strings.Split(readFile(t, logPath), "\n") {
		if strings.Contains(line, `"event":"logout"`) && strings.Contains(line, openid) && strings.Contains(line, `"result":"ok"`) {
			found = true
		}
	}
	if !found {
		t.Fatal("no logout audit entry naming the cookie's user")
	}
}

func TestWebLoginSandbox(t *testing.T) {
	st := startStack(t, stackConfig{
		Sandbox: true,
		Directive: "\t\tweb {\n\t\t\toa_app " + oaAppID + "\n\t\t\tqr_app " + websiteAppID +
			"\n\t\t\treturn_to " + siteBase + "/\n\t\t}\n",
	})
	br := startBrowser(t)
	// The sandbox serves WeChat's pages itself: no WeChat, no fake to set.
	for _, c := range []struct{ ua, appid string }{{weChatUA, oaAppID}, {"", websiteAppID}} {
		tb := browserLogin(t, br, c.ua, "zoe", "/sandboxed")
		wantWebIdentity(t, st.Upstream.Last(t), c.appid, wechattest.WebOpenID(c.appid, "zoe"), wechattest.WebUnionID("zoe"))
		sessionCookie(t, tb)
	}
}

// Over HTTPS the session cookie is Secure and named __Host-wx_session, so
// no plain-HTTP page or sibling subdomain can set or read it.
func TestWebLoginCookieOverHTTPS(t *testing.T) {
	const base = "https://localhost:9443"
	fake, fakeURL := startWeChat(t, wechattest.Options{})
	fake.AddApp(testAppID, testSecret)
	fake.AddApp(websiteAppID, webSecret)
	up := startUpstream(t)
	loadCaddy(t, globalOptions("")+`
`+base+` {
	tls internal
	wechat_auth {
		app `+testAppID+` `+testSecret+`
		app `+websiteAppID+` `+webSecret+`
		api_base `+fakeURL+`
		signing_key `+testSigningKey+`
		web {
			qr_app `+websiteAppID+`
			return_to `+base+`/
			open_base `+fakeURL+`
		}
	}
	reverse_proxy `+up.Addr+`
}
`)
	br := startBrowser(t)
	tb := br.tab(t, "")
	tb.ignoreCertErrors(t)
	tb.navigate(t, base+"/wx/web/login?user=gina&return_to=/secure")
	tb.waitURL(t, base+"/secure")
	c := tb.cookie(t, base+"/", "__Host-wx_session")
	if c == nil {
		t.Fatalf("no __Host-wx_session; cookies: %+v", tb.cookies(t, base+"/"))
	}
	if !c.Secure || !c.HTTPOnly || c.SameSite != "Lax" || c.Path != "/" {
		t.Fatalf("cookie attributes: %+v", c)
	}
	checkAuthorize(t, fake, wechattest.PathQRConnect, websiteAppID, "snsapi_login", base+"/wx/web/callback", "gina")
	wantWebIdentityNamed(t, up.Last(t), websiteAppID, wechattest.WebOpenID(websiteAppID, "gina"), "__Host-wx_session")
}

// wantWebIdentityNamed checks the upstream saw the web user and not the
// cookie called name.
func wantWebIdentityNamed(t *testing.T, seen seenRequest, appid, openid, name string) {
	t.Helper()
	h := seen.Header
	if h.Get("X-Wx-Openid") != openid || h.Get("X-Wx-Appid") != appid || h.Get("X-Wx-Source") != "wx_web" {
		t.Fatalf("the upstream saw %v", h)
	}
	if strings.Contains(strings.Join(h.Values("Cookie"), ";"), name) {
		t.Fatalf("the upstream got the session cookie")
	}
}

// Two logins begun in one browser (two tabs) each keep their state
// cookie: finishing the first does not need the second's, and the second
// still finishes after.
func TestWebLoginTwoTabsOfOneBrowser(t *testing.T) {
	webStack(t, "", "")
	jar, step := jarClient(t)
	first, second := beginLogin(step, "tab1"), beginLogin(step, "tab2")
	for _, cb := range []string{first, second} {
		resp := step(cb)
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != siteBase+"/" {
			t.Fatalf("callback %s: %d to %q", cb, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	u, _ := url.Parse(siteBase + "/")
	for _, c := range jar.Cookies(u) {
		if strings.HasPrefix(c.Name, "wx_state") {
			t.Fatalf("a state cookie is left: %v", c)
		}
	}
}

// jarClient is a plain HTTP client with a cookie jar that shows redirects;
// step GETs a URL with it.
func jarClient(t *testing.T) (*cookiejar.Jar, func(u string) *http.Response) {
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Transport: httpClient.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return jar, func(u string) *http.Response {
		t.Helper()
		resp, err := client.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Header.Set("X-Body", string(b)) // for messages
		return resp
	}
}

// jarSessionCookie returns the value of the session cookie the jar holds
// for base, which must be there.
func jarSessionCookie(t *testing.T, jar *cookiejar.Jar, base string) string {
	t.Helper()
	u, _ := url.Parse(base + "/")
	for _, c := range jar.Cookies(u) {
		if c.Name == weblogin.SessionCookieHTTP && c.Value != "" {
			return c.Value
		}
	}
	t.Fatalf("no session cookie for %s", base)
	return ""
}

// beginLogin starts a QR login as user and goes through the fake's page;
// it returns the callback URL, not yet loaded.
func beginLogin(step func(string) *http.Response, user string) string {
	page := step(siteBase + "/wx/web/login?user=" + user)
	back := step(page.Header.Get("Location"))
	return back.Header.Get("Location")
}

// Cookie sessions are the tokens' sessions: the admin API's revocation
// and ban of a user end them, and a banned user cannot log in on the web.
func TestWebSessionsAnswerTheAdminAPI(t *testing.T) {
	webStack(t, "", "")
	jar, step := jarClient(t)
	// A user of its own: bans are kept in Caddy's storage for the whole run.
	user := "hank" + strconv.FormatInt(time.Now().UnixNano()%1e9, 10)
	login := func() string {
		t.Helper()
		if resp := step(beginLogin(step, user)); resp.StatusCode != http.StatusFound {
			t.Fatalf("callback: %d %s", resp.StatusCode, resp.Header.Get("X-Body"))
		}
		u, _ := url.Parse(siteBase + "/")
		for _, c := range jar.Cookies(u) {
			if c.Name == weblogin.SessionCookieHTTP {
				return c.Value
			}
		}
		t.Fatal("no session cookie")
		return ""
	}
	admin := func(path string) {
		t.Helper()
		body := `{"appid":"` + websiteAppID + `","openid":"` + wechattest.WebOpenID(websiteAppID, user) + `"}`
		r := send(t, "POST", adminURL+path, http.Header{"Content-Type": {"application/json"}}, body)
		wantStatus(t, r, http.StatusOK)
	}
	v := login()
	wantStatus(t, send(t, "GET", siteBase+"/api/me", withCookie(v), ""), http.StatusOK)
	admin("/wechat_auth/users/revoke")
	wantError(t, send(t, "GET", siteBase+"/api/me", withCookie(v), ""), http.StatusUnauthorized, "invalid_token")

	time.Sleep(1100 * time.Millisecond) // a revocation cuts off what was issued up to its second
	v = login()
	wantStatus(t, send(t, "GET", siteBase+"/api/me", withCookie(v), ""), http.StatusOK)
	admin("/wechat_auth/users/ban")
	wantError(t, send(t, "GET", siteBase+"/api/me", withCookie(v), ""), http.StatusUnauthorized, "invalid_token")
	resp := step(beginLogin(step, user))
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a banned user's web login: %d", resp.StatusCode)
	}
	wantNoSessionCookie(t, resp)
}

// The session cookie is for Caddy: it never reaches the upstream, beside
// a good Bearer token (which authenticates), a bad one on a public path,
// or alone; under either of its names, in any of several Cookie headers.
// The other cookies arrive as sent.
func TestWebSessionCookieNeverReachesTheUpstream(t *testing.T) {
	st := startStack(t, stackConfig{
		Apps:      []testApp{{testAppID, testSecret}, {oaAppID, webSecret}, {websiteAppID, webSecret}},
		Directive: "\t\tpublic /public/*\n",
		DirectiveOf: func(st *stack) string {
			return "\t\tweb {\n\t\t\tqr_app " + websiteAppID + "\n\t\t\treturn_to " + siteBase + "/\n\t\t\topen_base " + st.WeChatURL + "\n\t\t}\n"
		},
	})
	jar, step := jarClient(t)
	if resp := step(beginLogin(step, "ivy")); resp.StatusCode != http.StatusFound {
		t.Fatalf("callback: %d %s", resp.StatusCode, resp.Header.Get("X-Body"))
	}
	v := jarSessionCookie(t, jar, siteBase)
	st.addUser("cookie-mini")
	tok := st.loginApp(t, testAppID, "cookie-mini").Token
	for _, c := range []struct {
		name, path, token, source string
		cookie, want              []string
	}{
		{"good bearer", "/api/me", tok, "wx_client",
			[]string{"wx_session=" + v + "; k=v"}, []string{"k=v"}},
		{"good bearer, both names, two lines", "/api/me", tok, "wx_client",
			[]string{"a=1; __Host-wx_session=" + v, "wx_session=" + v + "; b=2"}, []string{"a=1", "b=2"}},
		{"bad bearer, public path", "/public/x", "not-a-token", "",
			[]string{"wx_session=" + v + "; k=v"}, []string{"k=v"}},
		{"cookie alone", "/api/me", "", "wx_web",
			[]string{"k=v; wx_session=" + v, "__Host-wx_session=" + v}, []string{"k=v"}},
	} {
		h := bearer(c.token)
		h["Cookie"] = c.cookie
		r := send(t, "GET", siteBase+c.path, h, "")
		wantStatus(t, r, http.StatusOK)
		seen := r.Seen(t)
		if got := seen.Header.Get("X-Wx-Source"); got != c.source {
			t.Errorf("%s: X-WX-SOURCE %q, want %q", c.name, got, c.source)
		}
		if got := seen.Header.Values("Cookie"); strings.Join(got, "\n") != strings.Join(c.want, "\n") {
			t.Errorf("%s: the upstream got Cookie %q, want %q", c.name, got, c.want)
		}
	}
}

// A handoff link made on one site does not open on another with its own
// signing key (the one-time values' store is shared by the process): 400,
// no cookie, no redirect; and it is spent. A HEAD (a link prefetcher) is
// 405 and leaves the link to the web-view's GET.
func TestWebViewHandoffStaysOnItsSite(t *testing.T) {
	st := startStack(t, stackConfig{
		DirectiveOf: func(st *stack) string {
			return "\t\tweb {\n\t\t\tqr_app " + websiteAppID + "\n\t\t\treturn_to " + siteBase + "/ https://elsewhere.example/\n\t\t\topen_base " + st.WeChatURL + "\n\t\t}\n"
		},
		Apps: []testApp{{testAppID, testSecret}, {websiteAppID, webSecret}},
		Sites: func(st *stack) string {
			d := "\t\tapp " + testAppID + " " + testSecret + "\n\t\tapp " + websiteAppID + " " + webSecret +
				"\n\t\tapi_base " + st.WeChatURL + "\n\t\tsigning_key other-site-signing-key-0123456789abcdef\n" +
				"\t\tweb {\n\t\t\tqr_app " + websiteAppID + "\n\t\t\treturn_to " + siteBase2 + "/\n\t\t\topen_base " + st.WeChatURL + "\n\t\t}\n"
			return wechatSite(siteBase2, d, st.Upstream.Addr, "")
		},
	})
	st.addUser("site-mini")
	tok := st.loginApp(t, testAppID, "site-mini").Token
	linkTo := func(returnTo string) string { return handoffLink(t, tok, returnTo) }
	link := linkTo("https://elsewhere.example/steal")
	other := strings.Replace(link, siteBase, siteBase2, 1)
	resp := sendNoFollow(t, "GET", other, nil, "")
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Fatalf("the link on another site: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	wantNoSessionCookie(t, resp)
	if resp := sendNoFollow(t, "GET", link, nil, ""); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a link refused elsewhere then opened at its site: %d", resp.StatusCode)
	}

	link = linkTo("/shop/")
	resp = sendNoFollow(t, "HEAD", link, nil, "")
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, POST" {
		t.Fatalf("HEAD on the link: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	wantNoSessionCookie(t, resp)
	resp = sendNoFollow(t, "GET", link, nil, "")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/shop/" && resp.Header.Get("Location") != siteBase+"/shop/" {
		t.Fatalf("GET after HEAD: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// The sandbox's WeChat pages redirect only to the site's callback (10003
// page otherwise); and a QR login's callback opened in WeChat without its
// state cookie (login CSRF: begun by another browser) makes no session,
// while an Official Account login's still may.
func TestWebSandboxPagesAndQRStateInWeChat(t *testing.T) {
	startStack(t, stackConfig{
		Sandbox: true,
		Directive: "\t\tweb {\n\t\t\toa_app " + oaAppID + "\n\t\t\tqr_app " + websiteAppID +
			"\n\t\t\treturn_to " + siteBase + "/\n\t\t}\n",
	})
	for _, page := range []string{"/wx/sandbox/connect/qrconnect?appid=" + websiteAppID + "&scope=snsapi_login",
		"/wx/sandbox/connect/oauth2/authorize?appid=" + oaAppID + "&scope=snsapi_base"} {
		resp := sendNoFollow(t, "GET", siteBase+page+"&response_type=code&state=abc&redirect_uri="+url.QueryEscape("http://evil.example/steal"), nil, "")
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Fatalf("%s to evil.example: %d to %q", page, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	for _, c := range []struct {
		startUA string
		want    int
	}{{"", http.StatusBadRequest}, {weChatUA, http.StatusFound}} {
		u := siteBase + "/wx/web/login?user=mallory"
		for range 2 {
			resp := sendNoFollow(t, "GET", u, http.Header{"User-Agent": {c.startUA}}, "")
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("GET %s: %d", u, resp.StatusCode)
			}
			u = resp.Header.Get("Location")
		}
		resp := sendNoFollow(t, "GET", u, http.Header{"User-Agent": {weChatUA}}, "")
		if resp.StatusCode != c.want {
			t.Fatalf("login begun with UA %q, callback in WeChat without its cookie: %d, want %d", c.startUA, resp.StatusCode, c.want)
		}
		if c.want != http.StatusFound {
			wantNoSessionCookie(t, resp)
		}
	}
}

// A WebSocket handshake is a GET, but it opens a channel both ways under
// the cookie's identity, and a browser makes one from any page, with the
// session cookie whenever that page is of the same site (another port,
// a sibling subdomain). An upstream written for header identity never
// needed to check its Origin (a page could not attach a Bearer token), so
// the handshake is judged as a write: refused from another origin.
func TestWebCookieWebSocketHandshakeFromAnotherOrigin(t *testing.T) {
	st := webStack(t, "", "")
	jar, step := jarClient(t)
	if resp := step(beginLogin(step, "wsuser")); resp.StatusCode != http.StatusFound {
		t.Fatalf("callback answered %d", resp.StatusCode)
	}
	v := jarSessionCookie(t, jar, siteBase)
	handshake := func(origin string) *reply {
		return send(t, "GET", siteBase+"/ws", withCookie(v, "Origin", origin, "Connection", "Upgrade", "Upgrade", "websocket",
			"Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), "")
	}
	n := st.Upstream.CountOf("GET", "/ws")
	wantError(t, handshake("http://localhost:9081"), http.StatusForbidden, "csrf_refused")
	if st.Upstream.CountOf("GET", "/ws") != n {
		t.Fatal("a handshake from another origin reached the upstream")
	}
	r := handshake(siteBase)
	if st.Upstream.CountOf("GET", "/ws") != n+1 {
		t.Fatalf("the site's own handshake did not reach the upstream: %d", r.Status)
	}
	// A plain GET from another origin (a link, an image) goes on as before.
	wantStatus(t, send(t, "GET", siteBase+"/api/me", withCookie(v, "Origin", "http://localhost:9081"), ""), http.StatusOK)
}

// A web-view handoff link made before its user was revoked (the admin
// API) opens no web session afterwards, as the token that made it works
// no more; a link made after the revocation, by a new login, opens one.
func TestWebViewHandoffMadeBeforeARevokeIsRefused(t *testing.T) {
	st := webStack(t, "", "")
	code := "handoff-revoked-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 10)
	user := st.addUser(code)
	logins := 0
	link := func() string {
		t.Helper()
		// Codes are single-use: each login of the user has its own.
		logins++
		c := code + "-" + strconv.Itoa(logins)
		st.WeChat.AddCode(testAppID, c, user)
		lr := st.login(t, c)
		return handoffLink(t, lr.Token, "/shop")
	}
	open := func(u string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("User-Agent", miniProgramWebViewUA)
		req.Header.Set("Sec-Fetch-Site", "none")
		req.Header.Set("Sec-Fetch-Mode", "navigate")
		req.Header.Set("Sec-Fetch-Dest", "document")
		resp, err := httpClient.Transport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	before := link()
	body := `{"appid":"` + testAppID + `","openid":"` + user.OpenID + `"}`
	wantStatus(t, send(t, "POST", adminURL+"/wechat_auth/users/revoke", http.Header{"Content-Type": {"application/json"}}, body), http.StatusOK)
	resp := open(before)
	if resp.StatusCode == http.StatusFound {
		t.Fatalf("a link made before the revoke opened: %d %q", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
	wantNoSessionCookie(t, resp)
	time.Sleep(1100 * time.Millisecond) // a revocation cuts off what was issued up to its second
	if resp := open(link()); resp.StatusCode != http.StatusFound {
		t.Fatalf("a link made after a new login: %d", resp.StatusCode)
	}
}

// After a logout from the page, going back does not show the logged-in
// page from the browser's back/forward cache: the logout's Clear-Site-Data
// empties it, and the page is asked for again, without the session.
func TestWebLogoutClearsBFCache(t *testing.T) {
	webStack(t, "", "")
	br := startBrowser(t)
	tb := browserLogin(t, br, "", "ivan", "/")
	openid := wechattest.WebOpenID(websiteAppID, "ivan")
	tb.navigate(t, siteBase+"/api/me?page=1")
	if text := tb.text(t); !strings.Contains(text, openid) {
		t.Fatalf("page 1 logged in shows %q", text)
	}
	tb.eval(t, `window.marker = "alive"; ""`)
	tb.navigate(t, siteBase+"/api/me?page=2")
	status := tb.eval(t, `(() => { const x = new XMLHttpRequest(); x.open("POST", "/wx/logout", false); x.send(); return String(x.status); })()`)
	if status != "204" {
		t.Fatalf("logout from the page: %s", status)
	}
	tb.eval(t, `history.back(); ""`)
	tb.waitURL(t, siteBase+"/api/me?page=1")
	time.Sleep(300 * time.Millisecond)
	if text := tb.text(t); strings.Contains(text, openid) {
		t.Errorf("going back after logout shows the logged-in page (marker %q): %q", tb.eval(t, `String(window.marker)`), text)
	}
}

// The page a handoff link shows in a browser holds the unused ticket in
// its URL. Leaving it, by Cancel or by Continue, and what the browser
// fetches for it (a favicon) send the site at most its origin as Referer:
// the site's access log and the upstream never see a ticket that logs its
// reader in.
func TestWebHandoffReferer(t *testing.T) {
	st := webStack(t, "", "")
	st.addUser("handoff-referer")
	lr := st.login(t, "handoff-referer")
	link := func() string { return handoffLink(t, lr.Token, "/account") }
	br := startBrowser(t)
	// Logged in on the web already, so the site's pages reach the upstream.
	tb := browserLogin(t, br, "", "referer-web", "/")
	roots := st.Upstream.CountOf(http.MethodGet, "/")
	tb.navigate(t, link())
	tb.eval(t, `document.querySelector("a").click(), ""`)
	for deadline := time.Now().Add(browserTimeout); st.Upstream.CountOf(http.MethodGet, "/") == roots; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Cancel led nowhere")
		}
	}

	tb.navigate(t, link())
	time.Sleep(1200 * time.Millisecond) // the button is enabled a second after the page shows
	tb.eval(t, `document.getElementById("go").click(), ""`)
	tb.waitURL(t, siteBase+"/account")
	if got := st.Upstream.Last(t).Header.Get("X-Wx-Openid"); got != lr.OpenID {
		t.Fatalf("after Continue the upstream saw %q, want %q", got, lr.OpenID)
	}
	time.Sleep(300 * time.Millisecond)
	st.Upstream.mu.Lock()
	defer st.Upstream.mu.Unlock()
	for _, seen := range st.Upstream.seen {
		if ref := seen.Header.Get("Referer"); strings.Contains(ref, "ticket") {
			t.Errorf("%s %s reached the upstream with Referer %q", seen.Method, seen.Path, ref)
		}
	}
}
