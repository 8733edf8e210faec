package caddytest

// WeChat web login in a real browser, before it is wired into wechat_auth:
// a tiny site made of internal/weblogin and the wechat client sends
// headless Chromium through the fake WeChat's authorize (inside WeChat) or
// qrconnect (outside) page and back, exchanges the code, and sets the
// session cookie, whose attributes are then read back from Chromium.
//
// Proved here: the whole dance runs offline; the page WeChat is sent to
// depends on the User-Agent; the fake sees the right appid, scope,
// redirect_uri and a state of at most 128 alphanumerics; the session
// cookie is HttpOnly, SameSite=Lax, Path=/ (plus Secure and the __Host-
// name on HTTPS) and holds no openid; the state cookie and the session
// cookie reach the site on a login that began on another site (with
// SameSite=Strict they would not) and the state cookie is cleared after; a replayed
// callback, a declined authorization and a snapshot user make no session.

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/weblogin"
	"github.com/caddy-wechat/wechatauth/wechat"
	"github.com/caddy-wechat/wechatauth/wechattest"
)

const (
	oaAppID      = "wxa0a0a0a0a0a0a0a0" // Official Account: pages inside WeChat
	websiteAppID = "wxb1b1b1b1b1b1b1b1" // website app: QR login outside WeChat
	webSecret    = "web-secret-do-not-leak-0123456789"
)

// webSite is the smallest site that logs a browser in with WeChat.
type webSite struct {
	srv     *httptest.Server
	https   bool
	fakeURL string
	client  *wechat.Client
	store   *weblogin.MemoryStore
	back    *weblogin.ReturnTo

	mu        sync.Mutex
	sessions  map[string]wechat.OAuthToken // by cookie value
	callbacks []string                     // callback URLs seen
}

type pendingLogin struct {
	ReturnTo string `json:"return_to"`
	AppID    string `json:"appid"`
}

func startWebSite(t *testing.T, fakeURL string, https bool) *webSite {
	t.Helper()
	s := &webSite{
		https:    https,
		fakeURL:  fakeURL,
		store:    weblogin.NewMemoryStore(1000, nil),
		sessions: make(map[string]wechat.OAuthToken),
		client: wechat.New(wechat.Config{
			BaseURL: fakeURL,
			Apps:    map[string]string{oaAppID: webSecret, websiteAppID: webSecret},
		}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", s.login)
	mux.HandleFunc("GET /callback", s.callback)
	mux.HandleFunc("GET /me", s.me)
	s.srv = httptest.NewUnstartedServer(mux)
	// Chromium's speculative connections, made before the tab accepts the
	// test certificate, fail their handshake: noise, not a failure.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if https {
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	t.Cleanup(s.srv.Close)
	back, err := weblogin.NewReturnTo([]string{s.srv.URL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	s.back = back
	return s
}

func (s *webSite) cookieName() string { return weblogin.SessionCookieName("", s.https) }

func inWeChat(r *http.Request) bool { return strings.Contains(r.UserAgent(), "MicroMessenger") }

func (s *webSite) login(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	returnTo := q.Get("return_to")
	if returnTo == "" {
		returnTo = "/me"
	}
	back, err := s.back.Check(returnTo, s.srv.URL)
	if err != nil {
		http.Error(w, "invalid_request: "+err.Error(), http.StatusBadRequest)
		return
	}
	path, appid, scope := wechattest.PathQRConnect, websiteAppID, "snsapi_login"
	if inWeChat(r) {
		path, appid, scope = wechattest.PathOAuthAuthorize, oaAppID, "snsapi_base"
	}
	state := weblogin.NewState()
	rec, _ := json.Marshal(pendingLogin{ReturnTo: back, AppID: appid})
	if err := s.store.PutOnce(r.Context(), "state:"+state, rec, weblogin.StateTTL); err != nil {
		http.Error(w, "store_unavailable", http.StatusServiceUnavailable)
		return
	}
	http.SetCookie(w, weblogin.BindingCookie(state, s.https))
	aq := url.Values{
		"appid":         {appid},
		"redirect_uri":  {s.srv.URL + "/callback"},
		"response_type": {"code"},
		"scope":         {scope},
		"state":         {state},
	}
	// The fake's own knobs, passed on as the sandbox would.
	for _, k := range []string{"user", "decline", "snapshot"} {
		if v := q.Get(k); v != "" {
			aq.Set(k, v)
		}
	}
	http.Redirect(w, r, s.fakeURL+path+"?"+aq.Encode()+"#wechat_redirect", http.StatusFound)
}

func (s *webSite) callback(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.callbacks = append(s.callbacks, s.srv.URL+r.URL.RequestURI())
	s.mu.Unlock()
	q := r.URL.Query()
	state := q.Get("state")
	if !weblogin.ValidState(state) {
		http.Error(w, "invalid_request: bad state", http.StatusBadRequest)
		return
	}
	raw, ok, err := s.store.Take(r.Context(), "state:"+state)
	if err != nil || !ok {
		http.Error(w, "invalid_request: unknown or used state", http.StatusBadRequest)
		return
	}
	if c, err := r.Cookie(weblogin.BindingCookieName(s.https)); err == nil {
		if !weblogin.CheckStateBinding(c.Value, state) {
			http.Error(w, "invalid_request: state of another browser", http.StatusBadRequest)
			return
		}
	} else if !inWeChat(r) {
		http.Error(w, "invalid_request: no state cookie", http.StatusBadRequest)
		return
	}
	http.SetCookie(w, weblogin.ClearBindingCookie(s.https))
	var p pendingLogin
	json.Unmarshal(raw, &p)
	code := q.Get("code")
	if code == "" {
		http.Error(w, "access_denied: the user declined", http.StatusForbidden)
		return
	}
	tok, err := s.client.OAuthAccessToken(r.Context(), p.AppID, code)
	if err != nil {
		http.Error(w, "invalid_code", http.StatusUnauthorized)
		return
	}
	if tok.Snapshot {
		http.Error(w, "snapshot_user: open the page in WeChat to log in", http.StatusForbidden)
		return
	}
	id := weblogin.NewTicket() // random: the cookie says nothing about the user
	kept := *tok
	kept.AccessToken, kept.RefreshToken = "", "" // snsapi_base: not kept
	s.mu.Lock()
	s.sessions[id] = kept
	s.mu.Unlock()
	http.SetCookie(w, weblogin.SessionCookie(s.cookieName(), id, s.https, time.Hour))
	http.Redirect(w, r, p.ReturnTo, http.StatusFound)
}

func (s *webSite) me(w http.ResponseWriter, r *http.Request) {
	v, ok := weblogin.CookieValue(r.Header, s.cookieName())
	s.mu.Lock()
	tok, known := s.sessions[v]
	s.mu.Unlock()
	if !ok || !known {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	appid := oaAppID
	if tok.Scope == "snsapi_login" {
		appid = websiteAppID
	}
	fmt.Fprintf(w, "<!doctype html><pre>openid=%s\nunionid=%s\nappid=%s</pre>", tok.OpenID, tok.UnionID, appid)
}

func (s *webSite) lastCallback() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.callbacks) == 0 {
		return ""
	}
	return s.callbacks[len(s.callbacks)-1]
}

// startElsewhere serves, on another site (localhost, where the site is
// 127.0.0.1), a page with a link to target: a shared link in a chat or a
// search result. A login that starts with a click there is a cross-site
// navigation all the way to the callback, as when WeChat's own page sends
// the browser back, so SameSite=Strict cookies would not reach the
// callback; Lax ones do.
func startElsewhere(t *testing.T, target string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><a id="go" href="%s">log in with WeChat</a>`, html.EscapeString(target))
	}))
	t.Cleanup(srv.Close)
	return strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
}

// clickThrough opens a page on another site and follows its link to target.
func clickThrough(t *testing.T, tb *tab, target string) {
	t.Helper()
	tb.navigate(t, startElsewhere(t, target))
	tb.eval(t, `document.getElementById("go").click(), ""`)
}

func webFakeWeChat(t *testing.T) (*wechattest.Server, string) {
	t.Helper()
	fake, fakeURL := startWeChat(t, wechattest.Options{})
	fake.AddApp(oaAppID, webSecret)
	fake.AddApp(websiteAppID, webSecret)
	return fake, fakeURL
}

// checkAuthorize checks what the fake's page was asked.
func checkAuthorize(t *testing.T, fake *wechattest.Server, path, appid, scope, redirectURI, user string) {
	t.Helper()
	reqs := fake.AuthorizeRequests()
	if len(reqs) != 1 {
		t.Fatalf("the fake saw %d authorizations: %+v", len(reqs), reqs)
	}
	a := reqs[0]
	if a.Path != path || a.AppID != appid || a.Scope != scope || a.RedirectURI != redirectURI || a.ResponseType != "code" || a.User != user || a.Error != "" {
		t.Fatalf("the fake saw %+v", a)
	}
	if len(a.State) == 0 || len(a.State) > 128 || !weblogin.ValidState(a.State) {
		t.Fatalf("state %q is not 1..128 of [A-Za-z0-9]", a.State)
	}
}

func TestBrowserOAuthInsideWeChat(t *testing.T) {
	start := time.Now()
	fake, fakeURL := webFakeWeChat(t)
	site := startWebSite(t, fakeURL, false)
	br := startBrowser(t)
	tb := br.tab(t, weChatUA)
	if ua := tb.eval(t, `navigator.userAgent`); !strings.Contains(ua, "MicroMessenger") {
		t.Fatalf("navigator.userAgent %q", ua)
	}

	clickThrough(t, tb, site.srv.URL+"/login?user=alice")
	tb.waitURL(t, site.srv.URL+"/me")
	text := tb.text(t)
	openid := wechattest.WebOpenID(oaAppID, "alice")
	for _, want := range []string{"openid=" + openid, "unionid=" + wechattest.WebUnionID("alice"), "appid=" + oaAppID} {
		if !strings.Contains(text, want) {
			t.Fatalf("the page shows %q, lacks %q", text, want)
		}
	}
	checkAuthorize(t, fake, wechattest.PathOAuthAuthorize, oaAppID, "snsapi_base", site.srv.URL+"/callback", "alice")

	c := tb.cookie(t, site.srv.URL+"/", "wx_session")
	if c == nil {
		t.Fatalf("no wx_session cookie; cookies: %+v", tb.cookies(t, site.srv.URL+"/"))
	}
	if !c.HTTPOnly || c.SameSite != "Lax" || c.Path != "/" || c.Secure || c.Session {
		t.Fatalf("cookie attributes: HttpOnly %v SameSite %q Path %q Secure %v Session %v", c.HTTPOnly, c.SameSite, c.Path, c.Secure, c.Session)
	}
	if strings.Contains(c.Value, openid) || strings.Contains(c.Value, "alice") {
		t.Fatalf("the cookie value %q reveals the user", c.Value)
	}
	if js := tb.eval(t, `document.cookie`); strings.Contains(js, "wx_session") {
		t.Fatalf("script reads the session cookie: %q", js)
	}
	if b := tb.cookie(t, site.srv.URL+"/", "wx_state"); b != nil {
		t.Fatalf("the state cookie outlived the callback: %+v", b)
	}

	// WeChat's browser may load the callback again: no second session.
	tb.navigate(t, site.lastCallback())
	if text := tb.text(t); !strings.Contains(text, "unknown or used state") {
		t.Fatalf("a replayed callback shows %q", text)
	}
	site.mu.Lock()
	n := len(site.sessions)
	site.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d sessions after a replayed callback", n)
	}
	t.Logf("in-WeChat flow in a browser: %v (browser start included)", time.Since(start).Round(time.Millisecond))
}

func TestBrowserOAuthQRConnectOverHTTPS(t *testing.T) {
	start := time.Now()
	fake, fakeURL := webFakeWeChat(t)
	site := startWebSite(t, fakeURL, true)
	br := startBrowser(t)
	tb := br.tab(t, "") // Chromium's own UA: a PC browser, not WeChat
	tb.ignoreCertErrors(t)

	clickThrough(t, tb, site.srv.URL+"/login?user=bob")
	tb.waitURL(t, site.srv.URL+"/me")
	text := tb.text(t)
	openid := wechattest.WebOpenID(websiteAppID, "bob")
	for _, want := range []string{"openid=" + openid, "unionid=" + wechattest.WebUnionID("bob"), "appid=" + websiteAppID} {
		if !strings.Contains(text, want) {
			t.Fatalf("the page shows %q, lacks %q", text, want)
		}
	}
	if wechattest.WebOpenID(oaAppID, "bob") == openid {
		t.Fatal("one openid for two apps")
	}
	checkAuthorize(t, fake, wechattest.PathQRConnect, websiteAppID, "snsapi_login", site.srv.URL+"/callback", "bob")

	c := tb.cookie(t, site.srv.URL+"/", "__Host-wx_session")
	if c == nil {
		t.Fatalf("no __Host-wx_session cookie; cookies: %+v", tb.cookies(t, site.srv.URL+"/"))
	}
	if !c.HTTPOnly || c.SameSite != "Lax" || c.Path != "/" || !c.Secure {
		t.Fatalf("cookie attributes: HttpOnly %v SameSite %q Path %q Secure %v", c.HTTPOnly, c.SameSite, c.Path, c.Secure)
	}
	if strings.Contains(c.Value, openid) {
		t.Fatal("the cookie value reveals the openid")
	}
	if b := tb.cookie(t, site.srv.URL+"/", "__Host-wx_state"); b != nil {
		t.Fatalf("the state cookie outlived the callback: %+v", b)
	}
	t.Logf("QR flow over HTTPS in a browser: %v (browser start included)", time.Since(start).Round(time.Millisecond))
}

func TestBrowserOAuthRefusals(t *testing.T) {
	tests := []struct {
		name, query, want string
		snapshot          bool
	}{
		{"declined", "decline=1", "access_denied", false},
		{"snapshot user", "user=carol", "snapshot_user", true},
		{"return_to elsewhere", "return_to=//evil.example/", "invalid_request", false},
		{"return_to javascript", "return_to=javascript:alert(1)", "invalid_request", false},
	}
	fake, fakeURL := webFakeWeChat(t)
	site := startWebSite(t, fakeURL, false)
	br := startBrowser(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake.SetSnapshotUsers(tt.snapshot)
			tb := br.tab(t, weChatUA)
			tb.navigate(t, site.srv.URL+"/login?"+tt.query)
			if text := tb.text(t); !strings.Contains(text, tt.want) {
				t.Fatalf("the page shows %q, want %q", text, tt.want)
			}
			if u := tb.url(t); !strings.HasPrefix(u, site.srv.URL+"/") {
				t.Fatalf("the browser left the site for %q", u)
			}
			if c := tb.cookie(t, site.srv.URL+"/", "wx_session"); c != nil {
				t.Fatalf("a session cookie was set: %+v", c)
			}
		})
	}
	site.mu.Lock()
	defer site.mu.Unlock()
	if len(site.sessions) != 0 {
		t.Fatalf("%d sessions made", len(site.sessions))
	}
}

// attackerCallback runs a login with a plain HTTP client, as an attacker
// would for their own account, and returns the callback URL it ends on,
// unused: the link a login-CSRF attack makes a victim open.
func attackerCallback(t *testing.T, site *webSite) string {
	t.Helper()
	noFollow := &http.Client{
		Transport:     site.srv.Client().Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	next := site.srv.URL + "/login?user=mallory"
	for i := 0; i < 2; i++ {
		resp, err := noFollow.Get(next)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("%s: status %d", next, resp.StatusCode)
		}
		next = resp.Header.Get("Location")
	}
	if !strings.HasPrefix(next, site.srv.URL+"/callback?") {
		t.Fatalf("the attacker's login ended on %q", next)
	}
	return next
}

func TestBrowserOAuthLoginCSRF(t *testing.T) {
	_, fakeURL := webFakeWeChat(t)
	site := startWebSite(t, fakeURL, false)
	br := startBrowser(t)

	// A PC browser with no login of its own under way.
	tb := br.tab(t, "")
	tb.navigate(t, attackerCallback(t, site))
	if text := tb.text(t); !strings.Contains(text, "no state cookie") {
		t.Fatalf("a foreign callback without a state cookie shows %q", text)
	}

	// A browser whose own login is under way (the authorization page
	// refused it, so its state cookie stays) is handed the attacker's.
	tb = br.tab(t, "")
	tb.navigate(t, site.srv.URL+"/login?user=not/valid")
	if tb.cookie(t, site.srv.URL+"/", "wx_state") == nil {
		t.Fatal("no state cookie for the pending login")
	}
	tb.navigate(t, attackerCallback(t, site))
	if text := tb.text(t); !strings.Contains(text, "state of another browser") {
		t.Fatalf("a foreign callback shows %q", text)
	}

	// Inside WeChat the browser may have dropped the cookie: accepted
	// there (and only there), the trade-off the design makes.
	tb = br.tab(t, weChatUA)
	tb.navigate(t, attackerCallback(t, site))
	if text := tb.text(t); !strings.Contains(text, "openid="+wechattest.WebOpenID(websiteAppID, "mallory")) {
		t.Fatalf("inside WeChat without a state cookie: %q", text)
	}
	site.mu.Lock()
	defer site.mu.Unlock()
	if len(site.sessions) != 1 {
		t.Fatalf("%d sessions, want only the one inside WeChat", len(site.sessions))
	}
}
