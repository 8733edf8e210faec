package wechatauth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/redistest"
	"github.com/caddy-wechat/wechatauth/internal/weblogin"
	"github.com/caddy-wechat/wechatauth/wechattest"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func TestCaddyfileWebBlockFillsItsJSONFields(t *testing.T) {
	m, err := parseBlock(t, `wechat_auth {
		web {
			oa_app wxOA
			qr_app wxQR
			scope snsapi_userinfo
			return_to https://www.example.com/ https://m.example.com/shop/
			return_to https://a.example.com/
			cookie sid
			open_base http://127.0.0.1:9000
		}
	}`)
	if err != nil {
		t.Fatal(err)
	}
	got := mustJSONString(t, m["web"])
	want := `{"cookie":"sid","oa_app":"wxOA","open_base":"http://127.0.0.1:9000","qr_app":"wxQR","return_to":["https://www.example.com/","https://m.example.com/shop/","https://a.example.com/"],"scope":"snsapi_userinfo"}`
	if got != want {
		t.Fatalf("web JSON\n got %s\nwant %s", got, want)
	}
	for _, bad := range []string{
		"wechat_auth {\n web {\n oa_app\n }\n}",
		"wechat_auth {\n web {\n return_to\n }\n}",
		"wechat_auth {\n web {\n colour blue\n }\n}",
		"wechat_auth {\n web x {\n }\n}",
		"wechat_auth {\n web {\n }\n web {\n }\n}",
	} {
		if _, err := parseBlock(t, bad); err == nil {
			t.Errorf("parsed %q", bad)
		}
	}
}

func TestWebConfigErrorsNameTheProblem(t *testing.T) {
	ok := func() *WebConfig {
		return &WebConfig{OAApp: "wxa0a0a0a0a0a0a0a0", QRApp: "wxb1b1b1b1b1b1b1b1", ReturnTo: []string{"https://www.example.com/"}}
	}
	tests := []struct {
		name   string
		change func(w *WebConfig, h *Handler)
		want   string
	}{
		{"no app", func(w *WebConfig, _ *Handler) { w.OAApp, w.QRApp = "", "" }, "name an oa_app"},
		{"app without secret", func(w *WebConfig, h *Handler) { h.Sandbox = false; h.Apps = []App{{AppID: "wxmini", AppSecret: "s"}} }, "oa_app wxa0a0a0a0a0a0a0a0 has no secret"},
		{"one app twice", func(w *WebConfig, _ *Handler) { w.QRApp = w.OAApp }, "are one app"},
		{"bad scope", func(w *WebConfig, _ *Handler) { w.Scope = "snsapi_login" }, "scope must be"},
		{"no return_to", func(w *WebConfig, _ *Handler) { w.ReturnTo = nil }, "return_to needs"},
		{"return_to not absolute", func(w *WebConfig, _ *Handler) { w.ReturnTo = []string{"/shop/"} }, "return_to prefix"},
		{"bad cookie", func(w *WebConfig, _ *Handler) { w.Cookie = "a b" }, "cookie"},
		{"bad open_base", func(w *WebConfig, _ *Handler) { w.OpenBase = "ftp://x" }, "open_base"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &Handler{Sandbox: true, SigningKey: benchSigningKey, Web: ok()}
			tt.change(h.Web, h)
			err := h.Provision(benchContext(t))
			if err == nil {
				h.Cleanup()
				t.Fatal("provisioned")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

// The web apps are not mini programs: a login naming no app still finds
// the one mini program, and one naming a web app is refused.
func TestMiniProgramLoginLeavesWebAppsOut(t *testing.T) {
	h := newBenchHandler(t, benchWeb)
	benchLogin(t, h, "mini-user")
	w := newDiscardWriter()
	r := newFormRequest(h.RoutePrefix+"/login", "code=x&appid=wxa0a0a0a0a0a0a0a0")
	if err := h.ServeHTTP(w, r, okHandler{}); err != nil || w.status != http.StatusBadRequest {
		t.Fatalf("a login naming the Official Account: %d %v %s", w.status, err, w.body)
	}
}

// Bearer first: a request with an Authorization header is judged by it,
// whatever cookie it carries.
func TestBearerIsJudgedBeforeTheCookie(t *testing.T) {
	h := newBenchHandler(t, benchWeb)
	tok := benchLogin(t, h, "user")
	v := webCookieFor(t, h, tok)
	r := miniProgramRequest("not-a-token")
	r.Header["Cookie"] = []string{weblogin.SessionCookieHTTP + "=" + v}
	w := newDiscardWriter()
	if err := h.ServeHTTP(w, r, okHandler{}); err != nil || w.status != http.StatusUnauthorized {
		t.Fatalf("a bad Bearer token with a good cookie: %d %v", w.status, err)
	}
	r = miniProgramRequest("")
	r.Header["Cookie"] = []string{weblogin.SessionCookieHTTP + "=" + v}
	w = newDiscardWriter()
	if err := h.ServeHTTP(w, r, okHandler{}); err != nil || w.status != http.StatusOK || r.Header.Get("X-Wx-Source") != "wx_web" {
		t.Fatalf("the cookie alone: %d %v source %q", w.status, err, r.Header.Get("X-Wx-Source"))
	}
}

// A cookie in the second half of its token's life is replaced by a fresh
// one on the next request, so a browser in use stays logged in.
func TestCookieRenewedInTheSecondHalfOfItsLife(t *testing.T) {
	h := newBenchHandler(t, func(h *Handler) {
		benchWeb(h)
		// iat and exp are whole seconds: 6 s and a 3.5 s wait put the
		// second request in the second half of the life, wherever in its
		// second the cookie was made, with time to spare under -race.
		h.TokenTTL = caddyDuration(6 * time.Second)
	})
	v := webCookieFor(t, h, benchLogin(t, h, "user"))
	// The upstream lets shared caches keep its answer.
	get := func() *discardWriter {
		r := miniProgramRequest("")
		r.Header["Cookie"] = []string{weblogin.SessionCookieHTTP + "=" + v}
		w := newDiscardWriter()
		if err := h.ServeHTTP(w, r, cacheableHandler{}); err != nil || w.status != http.StatusOK {
			t.Fatalf("status %d, err %v", w.status, err)
		}
		return w
	}
	w := get()
	if len(w.hdr["Set-Cookie"]) != 0 {
		t.Fatalf("a fresh cookie was renewed: %q", w.hdr["Set-Cookie"])
	}
	if got := w.hdr.Get("Cache-Control"); got != cacheablePolicy {
		t.Fatalf("without a new cookie the upstream's Cache-Control became %q", got)
	}
	time.Sleep(3500 * time.Millisecond)
	w = get()
	if len(w.hdr["Set-Cookie"]) != 1 || !strings.HasPrefix(w.hdr["Set-Cookie"][0], weblogin.SessionCookieHTTP+"=") || strings.Contains(w.hdr["Set-Cookie"][0], v) {
		t.Fatalf("no new cookie in the second half: %q", w.hdr["Set-Cookie"])
	}
	// A shared cache must not keep the answer that carries the new
	// cookie, or it would hand this session to the next visitor.
	if got := w.hdr.Values("Cache-Control"); len(got) != 1 || got[0] != "private, max-age=600" {
		t.Fatalf("the answer with the renewed cookie has Cache-Control %q, want %q", got, "private, max-age=600")
	}
}

// A dead cookie is cleared on a request that passes on without identity
// (optional): the answer with that Set-Cookie is not for a shared cache
// either, or it would log out whoever it is served to.
func TestClearedCookieAnswerIsPrivate(t *testing.T) {
	h := newBenchHandler(t, func(h *Handler) {
		benchWeb(h)
		h.Optional = true
	})
	r := miniProgramRequest("")
	r.Header["Cookie"] = []string{weblogin.SessionCookieHTTP + "=not-a-cookie"}
	w := newDiscardWriter()
	if err := h.ServeHTTP(w, r, cacheableHandler{}); err != nil || w.status != http.StatusOK {
		t.Fatalf("status %d, err %v", w.status, err)
	}
	if len(w.hdr["Set-Cookie"]) != 1 || !strings.Contains(w.hdr["Set-Cookie"][0], "Max-Age=0") {
		t.Fatalf("the dead cookie was not cleared: %q", w.hdr["Set-Cookie"])
	}
	if got := w.hdr.Values("Cache-Control"); len(got) != 1 || got[0] != "private, max-age=600" {
		t.Fatalf("the answer clearing the cookie has Cache-Control %q", got)
	}
}

// cacheablePolicy is what cacheableHandler's answers say to caches.
const cacheablePolicy = "public, s-maxage=600, max-age=600"

// cacheableHandler is an upstream whose answers any cache may keep.
type cacheableHandler struct{}

func (cacheableHandler) ServeHTTP(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Cache-Control", cacheablePolicy)
	w.WriteHeader(http.StatusOK)
	_, err := w.Write([]byte("page"))
	return err
}

func mustJSONString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func caddyDuration(d time.Duration) caddy.Duration { return caddy.Duration(d) }

// The session cookie never reaches the upstream, whichever credential the
// request carries and whatever the answer: beside a good or a bad Bearer
// token, on a public path, in optional mode, under either name, in any of
// several Cookie headers. The other cookies pass byte for byte.
func TestSessionCookieNeverReachesTheUpstream(t *testing.T) {
	for _, optional := range []bool{false, true} {
		h := newBenchHandler(t, func(h *Handler) {
			benchWeb(h)
			h.Optional = optional
			h.PublicPaths = caddyhttp.MatchPath{"/public/*"}
		})
		tok := benchLogin(t, h, "user")
		v := webCookieFor(t, h, tok)
		for _, tt := range []struct {
			name, path, token string
			cookie, want      []string
		}{
			{"good bearer", "/api/me", tok,
				[]string{"wx_session=" + v + "; k=v"}, []string{"k=v"}},
			{"good bearer, both names, several lines", "/api/me", tok,
				[]string{"a=1", "__Host-wx_session=" + v + ";b=2 ", "c=3; wx_session=" + v + ";  d=4"},
				[]string{"a=1", "b=2 ", "c=3;  d=4"}},
			{"good bearer, cookie only", "/api/me", tok,
				[]string{"wx_session=" + v}, nil},
			{"bad bearer on a public path", "/public/x", "not-a-token",
				[]string{"k=v; wx_session=" + v}, []string{"k=v"}},
			{"cookie on a public path", "/public/x", "",
				[]string{"wx_session=" + v + "; __Host-wx_session=" + v + "; k=v"}, []string{"k=v"}},
			{"cookie", "/api/me", "",
				[]string{"x=\"y z\"; wx_session=" + v, "__Host-wx_session=" + v}, []string{"x=\"y z\""}},
			{"dead cookie on a public path", "/public/x", "",
				[]string{"wx_session=dead; k=v"}, []string{"k=v"}},
			{"no session cookie", "/api/me", tok,
				[]string{"wx_sessionx=1;  k=v"}, []string{"wx_sessionx=1;  k=v"}},
			{"state cookies of logins begun", "/api/me", "",
				[]string{"wx_state_AbCdEfGh=x; k=v; wx_session=" + v, "__Host-wx_state_12345678=y; wx_state=z"}, []string{"k=v"}},
			{"state cookies beside a bearer", "/api/me", tok,
				[]string{"wx_state_AbCdEfGh=x; k=v"}, []string{"k=v"}},
			{"names like a state cookie's", "/api/me", tok,
				[]string{"wx_state_x=1; my_wx_state_AbCdEfGh=2"}, []string{"wx_state_x=1; my_wx_state_AbCdEfGh=2"}},
		} {
			r := miniProgramRequest(tt.token)
			r.URL.Path = tt.path
			r.Header["Cookie"] = append([]string(nil), tt.cookie...)
			var got []string
			seen := false
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				seen, got = true, r.Header["Cookie"]
				return nil
			})
			if err := h.ServeHTTP(newDiscardWriter(), r, next); err != nil {
				t.Fatal(err)
			}
			if !seen {
				if tt.path == "/public/x" || optional || tt.token == tok {
					t.Errorf("optional %v, %s: the request did not go on", optional, tt.name)
				}
				continue
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") || len(got) != len(tt.want) {
				t.Errorf("optional %v, %s: the upstream got Cookie %q, want %q", optional, tt.name, got, tt.want)
			}
		}
	}
}

// handoffLinkFor asks for a web-view handoff link for the user of token.
func handoffLinkFor(tb testing.TB, h *Handler, token, returnTo string) string {
	tb.Helper()
	w := newDiscardWriter()
	r, _ := http.NewRequest(http.MethodPost, "http://api.example.com"+h.RoutePrefix+"/web/handoff", strings.NewReader(`{"return_to":"`+returnTo+`"}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+token)
	if err := h.ServeHTTP(w, r, okHandler{}); err != nil || w.status != http.StatusOK {
		tb.Fatalf("handoff: status %d, err %v: %s", w.status, err, w.body)
	}
	link := string(w.body)
	return link[strings.Index(link, "http"):strings.LastIndexByte(link, '"')]
}

// A browser outside the mini program's web-view that opens a handoff link
// gets a page asking first, which may not be framed and leaves the link
// unused; the web-view (any case of "miniProgram" in its User-Agent) and a
// client that is no browser open it at once.
func TestHandoffLinkAsksABrowserOutsideTheWebView(t *testing.T) {
	h := newBenchHandler(t, benchWeb)
	tok := benchLogin(t, h, "user")
	open := func(link, ua, accept string, more ...string) *discardWriter {
		t.Helper()
		w := newDiscardWriter()
		r, _ := http.NewRequest(http.MethodGet, link, nil)
		r.Header.Set("User-Agent", ua)
		r.Header.Set("Accept", accept)
		for i := 0; i+1 < len(more); i += 2 {
			r.Header.Set(more[i], more[i+1])
		}
		if err := h.ServeHTTP(w, r, okHandler{}); err != nil {
			t.Fatal(err)
		}
		return w
	}
	const page = "text/html,application/xhtml+xml,*/*;q=0.8"
	link := handoffLinkFor(t, h, tok, "/")
	w := open(link, "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0", page)
	if w.status != http.StatusOK || len(w.hdr["Set-Cookie"]) != 0 || !strings.Contains(string(w.body), `<form method="post" action="/wx/web/handoff?ticket=`) ||
		w.hdr.Get("X-Frame-Options") != "DENY" || !strings.Contains(w.hdr.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("a browser: status %d, headers %v: %s", w.status, w.hdr, w.body)
	}
	// The web-view opens it at once when the mini program opened it: a
	// page load the browser began itself (Sec-Fetch-Site: none).
	opened := []string{"Sec-Fetch-Site", "none", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"}
	webViews := []string{weChatUA + " miniProgram/wx4f4bc4dec97d474b", "Mozilla/5.0 (Windows NT 10.0) MicroMessenger/3.9 MiniProgramEnv/Windows"}
	for _, ua := range webViews {
		if w := open(link, ua, page, opened...); w.status != http.StatusFound || len(w.hdr["Set-Cookie"]) == 0 {
			t.Fatalf("%s: status %d: %s", ua, w.status, w.body)
		}
		link = handoffLinkFor(t, h, tok, "/")
	}
	// A load a page began in the web-view, or one without Fetch Metadata,
	// gets the page asking first; a prefetch gets 403.
	for _, more := range [][]string{
		{"Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"},
		nil,
	} {
		if w := open(link, webViews[0], page, more...); w.status != http.StatusOK || len(w.hdr["Set-Cookie"]) != 0 || !strings.Contains(string(w.body), "<form") {
			t.Fatalf("a web-view, %v: status %d: %s", more, w.status, w.body)
		}
	}
	if w := open(link, webViews[0], page, append(opened, "Sec-Purpose", "prefetch")...); w.status != http.StatusForbidden {
		t.Fatalf("a prefetch in a web-view: status %d: %s", w.status, w.body)
	}
	// A browser's image of it, with no Fetch Metadata (Chromium sends none
	// towards a plain-HTTP site), in the web-view or not: 403, unused.
	for _, ua := range []string{"Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0", weChatUA + " miniProgram/wx4f4bc4dec97d474b"} {
		if w := open(link, ua, "image/avif,image/webp,*/*"); w.status != http.StatusForbidden || len(w.hdr["Set-Cookie"]) != 0 {
			t.Fatalf("%s, an image: status %d: %s", ua, w.status, w.body)
		}
	}
	if w := open(link, "curl/8.5.0", "*/*"); w.status != http.StatusFound || len(w.hdr["Set-Cookie"]) == 0 {
		t.Fatalf("curl: status %d: %s", w.status, w.body)
	}
	if csp := w.hdr.Get("Content-Security-Policy"); strings.Contains(csp, "form-action") {
		t.Fatalf("CSP %q: form-action would stop the redirect to another return_to origin", csp)
	}

	// The page's POST opens the link only from this site itself: not from
	// a return_to origin, and a browser's Basic credentials do not turn it
	// into a request for a new link. Its errors come as a page.
	h = newBenchHandler(t, func(h *Handler) {
		benchWeb(h)
		h.Web.ReturnTo = append(h.Web.ReturnTo, "http://m.example.com/")
	})
	tok = benchLogin(t, h, "user")
	post := func(link, origin string, more ...string) *discardWriter {
		t.Helper()
		w := newDiscardWriter()
		r, _ := http.NewRequest(http.MethodPost, link, nil)
		r.Header.Set("Origin", origin)
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(more); i += 2 {
			r.Header.Set(more[i], more[i+1])
		}
		if err := h.ServeHTTP(w, r, okHandler{}); err != nil {
			t.Fatal(err)
		}
		return w
	}
	link = handoffLinkFor(t, h, tok, "/")
	if w := post(link, "http://m.example.com"); w.status != http.StatusForbidden || len(w.hdr["Set-Cookie"]) != 0 {
		t.Fatalf("a POST from a return_to origin: status %d: %s", w.status, w.body)
	}
	if w := post(link, "http://api.example.com", "Authorization", "Basic dXNlcjpwYXNz"); w.status != http.StatusFound || len(w.hdr["Set-Cookie"]) == 0 {
		t.Fatalf("the page's POST with Basic credentials: status %d: %s", w.status, w.body)
	}
	if w := post(link, "http://api.example.com", "Sec-Fetch-Mode", "navigate", "Accept", "text/html"); w.status != http.StatusBadRequest ||
		!strings.HasPrefix(w.hdr.Get("Content-Type"), "text/html") || !strings.Contains(string(w.body), "already used") {
		t.Fatalf("the page's POST of a used link: status %d, %q: %s", w.status, w.hdr.Get("Content-Type"), w.body)
	}
}

// A HEAD on a handoff link (a link prefetcher) is refused and leaves the
// link for the GET of the web-view.
func TestHandoffLinkSurvivesHEAD(t *testing.T) {
	h := newBenchHandler(t, benchWeb)
	link := handoffLinkFor(t, h, benchLogin(t, h, "user"), "/")
	w := newDiscardWriter()
	r, _ := http.NewRequest(http.MethodHead, link, nil)
	if err := h.ServeHTTP(w, r, okHandler{}); err != nil || w.status != http.StatusMethodNotAllowed || len(w.hdr["Set-Cookie"]) != 0 {
		t.Fatalf("HEAD: status %d, err %v, Set-Cookie %q", w.status, err, w.hdr["Set-Cookie"])
	}
	if got := w.hdr.Get("Allow"); got != "GET, POST" {
		t.Fatalf("HEAD: Allow %q", got)
	}
	w = newDiscardWriter()
	r, _ = http.NewRequest(http.MethodGet, link, nil)
	if err := h.ServeHTTP(w, r, okHandler{}); err != nil || w.status != http.StatusFound || len(w.hdr["Set-Cookie"]) == 0 {
		t.Fatalf("GET after HEAD: status %d, err %v: %s", w.status, err, w.body)
	}
}

// A HEAD on the callback (a link prefetcher or scanner) is refused and
// leaves the login's state and code for the browser's GET: as for a
// handoff link, only a GET makes a session.
func TestWebCallbackSurvivesHEAD(t *testing.T) {
	h := newBenchHandler(t, benchWeb)
	cb := sandboxCallback(t, h, weChatUA)
	if w, err := openInWeChat(h, http.MethodHead, cb); err != nil || w.status != http.StatusMethodNotAllowed || len(w.hdr["Set-Cookie"]) != 0 {
		t.Fatalf("HEAD: status %d, err %v, Set-Cookie %q", w.status, err, w.hdr["Set-Cookie"])
	}
	if w, err := openInWeChat(h, http.MethodGet, cb); err != nil || w.status != http.StatusFound || len(w.hdr["Set-Cookie"]) == 0 {
		t.Fatalf("GET after HEAD: status %d, err %v: %s", w.status, err, w.body)
	}
}

// On a site with web login, a request without credentials is told that a
// browser logs in for a session cookie, not only that it lacks a Bearer
// token; the mini program's 401 keeps its words.
func TestNoCredentialOnAWebSiteNamesTheSessionCookie(t *testing.T) {
	for _, web := range []bool{false, true} {
		h := newBenchHandler(t, func(h *Handler) {
			if web {
				benchWeb(h)
			}
		})
		w := newDiscardWriter()
		if err := h.ServeHTTP(w, miniProgramRequest(""), okHandler{}); err != nil || w.status != http.StatusUnauthorized {
			t.Fatalf("web %v: status %d, err %v", web, w.status, err)
		}
		if got := strings.Contains(string(w.body), "session cookie"); got != web {
			t.Fatalf("web %v: %s", web, w.body)
		}
		if !strings.Contains(string(w.body), `"unauthorized"`) {
			t.Fatalf("web %v: the code changed: %s", web, w.body)
		}
	}
}

// On a site with web login, a browser opening a protected page without a
// session gets the 401 as a page with a link that logs in and comes back
// to that page; other clients get the JSON answer as before.
func TestA401PageLinksToTheLogin(t *testing.T) {
	h := newBenchHandler(t, benchWeb)
	get := func(accept string) *discardWriter {
		w := newDiscardWriter()
		r, _ := http.NewRequest(http.MethodGet, "http://api.example.com/api/orders?page=1", nil)
		r.Header.Set("Accept", accept)
		if err := h.ServeHTTP(w, r, okHandler{}); err != nil || w.status != http.StatusUnauthorized {
			t.Fatalf("Accept %q: status %d, err %v", accept, w.status, err)
		}
		return w
	}
	w := get("text/html,application/xhtml+xml,*/*;q=0.8")
	const link = `href="/wx/web/login?return_to=%2Fapi%2Forders%3Fpage%3D1"`
	if !strings.HasPrefix(w.hdr.Get("Content-Type"), "text/html") || !strings.Contains(string(w.body), link) ||
		!strings.Contains(string(w.body), "unauthorized") || w.hdr.Get("Vary") != "Accept" {
		t.Fatalf("a browser got %q, Vary %q: %s", w.hdr.Get("Content-Type"), w.hdr.Get("Vary"), w.body)
	}
	// The link logs in and comes back to the page.
	cb := sandboxCallbackWith(t, h, weChatUA, "return_to=%2Fapi%2Forders%3Fpage%3D1")
	if w := mustFollow(t, h, cb); w.hdr.Get("Location") != "http://api.example.com/api/orders?page=1" {
		t.Fatalf("the login went to %q", w.hdr.Get("Location"))
	}
	if w := get("*/*"); !strings.HasPrefix(w.hdr.Get("Content-Type"), "application/json") {
		t.Fatalf("curl got %q: %s", w.hdr.Get("Content-Type"), w.body)
	}
	// A script's request naming text/html (jQuery's dataType "html") gets
	// the JSON answer.
	w = newDiscardWriter()
	r, _ := http.NewRequest(http.MethodGet, "http://api.example.com/api/orders?page=1", nil)
	r.Header.Set("Accept", "text/html, */*; q=0.01")
	r.Header.Set("Sec-Fetch-Mode", "cors")
	if err := h.ServeHTTP(w, r, okHandler{}); err != nil || !strings.HasPrefix(w.hdr.Get("Content-Type"), "application/json") {
		t.Fatalf("a script got %q, err %v", w.hdr.Get("Content-Type"), err)
	}
	// After a rewrite, the link comes back to the page the browser asked for.
	w = newDiscardWriter()
	r, _ = http.NewRequest(http.MethodGet, "http://api.example.com/app/orders", nil)
	r.Header.Set("Accept", "text/html")
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.OriginalRequestCtxKey, *r.Clone(r.Context())))
	r.URL.Path = "/orders"
	if err := h.ServeHTTP(w, r, okHandler{}); err != nil || !strings.Contains(string(w.body), `return_to=%2Fapp%2Forders"`) {
		t.Fatalf("after a rewrite: err %v: %s", err, w.body)
	}

	// A page this site may not return to gets the page without the link.
	h = newBenchHandler(t, func(h *Handler) {
		benchWeb(h)
		h.Web.ReturnTo = []string{"http://api.example.com/shop/"}
	})
	w = newDiscardWriter()
	r, _ = http.NewRequest(http.MethodGet, "http://api.example.com/api/orders", nil)
	r.Header.Set("Accept", "text/html")
	if err := h.ServeHTTP(w, r, okHandler{}); err != nil || w.status != http.StatusUnauthorized || strings.Contains(string(w.body), "/web/login") {
		t.Fatalf("outside return_to: status %d, err %v: %s", w.status, err, w.body)
	}
}

// The routes that take only the mini program's Bearer token do not tell a
// browser holding a live session cookie to send that cookie: their 401
// asks for the Bearer token.
func TestBearerOnlyRoutesDoNotSuggestTheCookie(t *testing.T) {
	h := newBenchHandler(t, benchWeb)
	cookie := sessionCookieSet(t, mustFollow(t, h, sandboxCallback(t, h, weChatUA)).hdr)
	for _, path := range []string{"/refresh", "/userinfo", "/decrypt", "/phone", "/web/handoff"} {
		w := newDiscardWriter()
		r, _ := http.NewRequest(http.MethodPost, "http://api.example.com"+h.RoutePrefix+path, strings.NewReader(`{}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Origin", "http://api.example.com")
		r.Header.Set("Cookie", weblogin.SessionCookieHTTP+"="+cookie)
		if err := h.ServeHTTP(w, r, okHandler{}); err != nil || w.status != http.StatusUnauthorized {
			t.Fatalf("%s: status %d, err %v: %s", path, w.status, err, w.body)
		}
		if body := string(w.body); strings.Contains(body, "session cookie of a web login") || !strings.Contains(body, "Bearer") {
			t.Fatalf("%s: %s", path, body)
		}
	}
}

// A handoff request without return_to says it is missing, in a form body
// (curl -d's default type) as in JSON.
func TestHandoffWithoutReturnToSaysItIsRequired(t *testing.T) {
	h := newBenchHandler(t, benchWeb)
	token := benchLogin(t, h, "user")
	for _, tc := range []struct{ contentType, body string }{
		{"application/x-www-form-urlencoded", "x=1"},
		{"application/x-www-form-urlencoded", ""},
		{"application/json", "{}"},
	} {
		w := newDiscardWriter()
		r, _ := http.NewRequest(http.MethodPost, "http://api.example.com"+h.RoutePrefix+"/web/handoff", strings.NewReader(tc.body))
		r.Header.Set("Content-Type", tc.contentType)
		r.Header.Set("Authorization", "Bearer "+token)
		if err := h.ServeHTTP(w, r, okHandler{}); err != nil || w.status != http.StatusBadRequest || !strings.Contains(string(w.body), "return_to is required") {
			t.Fatalf("%s %q: status %d, err %v: %s", tc.contentType, tc.body, w.status, err, w.body)
		}
	}
}

// Loading the callback again once the login finished (the reload button,
// the back button) takes a browser that is logged in where a login
// without return_to goes; without a live session cookie it is still the
// unknown login it is.
func TestWebCallbackLoadedAgainWhenLoggedInRedirects(t *testing.T) {
	h := newBenchHandler(t, benchWeb)
	cb := sandboxCallback(t, h, weChatUA)
	w, err := openInWeChat(h, http.MethodGet, cb)
	if err != nil || w.status != http.StatusFound {
		t.Fatalf("callback: status %d, err %v: %s", w.status, err, w.body)
	}
	session := sessionCookieSet(t, w.hdr)
	again := func(cookie string) *discardWriter {
		w := newDiscardWriter()
		r, _ := http.NewRequest(http.MethodGet, cb, nil)
		r.Header.Set("User-Agent", weChatUA)
		if cookie != "" {
			r.Header.Set("Cookie", weblogin.SessionCookieHTTP+"="+cookie)
		}
		if err := h.ServeHTTP(w, r, okHandler{}); err != nil {
			t.Fatal(err)
		}
		return w
	}
	if w := again(session); w.status != http.StatusFound || w.hdr.Get("Location") != "http://api.example.com/" || len(w.hdr["Set-Cookie"]) != 0 {
		t.Fatalf("logged in, the callback again: status %d, Location %q, Set-Cookie %q: %s", w.status, w.hdr.Get("Location"), w.hdr["Set-Cookie"], w.body)
	}
	for _, cookie := range []string{"", "dead"} {
		if w := again(cookie); w.status != http.StatusBadRequest || !strings.Contains(string(w.body), "start the login again") {
			t.Fatalf("cookie %q, the callback again: status %d: %s", cookie, w.status, w.body)
		}
	}
}

// WeChat's code exchange leaves out the unionid of a user who does not
// follow the Official Account. With snsapi_userinfo the login asks
// sns/userinfo for it, so the upstream gets the X-WX-UNIONID that links
// the user's apps; if that call fails the login fails, with no session.
func TestWebLoginOfANonFollowerKeepsItsUnionID(t *testing.T) {
	for _, tt := range []struct {
		scope     string
		calls     int
		wantUnion bool
	}{
		{"snsapi_userinfo", 1, true},
		{"snsapi_base", 0, false},
	} {
		h := newBenchHandler(t, func(h *Handler) {
			benchWeb(h)
			h.Web.Scope = tt.scope
		})
		strangers(t, h)
		calls := h.fake.Calls(wechattest.PathSNSUserInfo)
		w, err := openInWeChat(h, http.MethodGet, sandboxCallback(t, h, weChatUA))
		if err != nil || w.status != http.StatusFound {
			t.Fatalf("%s: callback: status %d, err %v: %s", tt.scope, w.status, err, w.body)
		}
		if n := h.fake.Calls(wechattest.PathSNSUserInfo) - calls; n != tt.calls {
			t.Errorf("%s: %d calls of sns/userinfo, want %d", tt.scope, n, tt.calls)
		}
		cookie := sessionCookieSet(t, w.hdr)
		r := miniProgramRequest("")
		r.Header.Set("Cookie", weblogin.SessionCookieHTTP+"="+cookie)
		var got http.Header
		next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			got = r.Header.Clone()
			return nil
		})
		if err := h.ServeHTTP(newDiscardWriter(), r, next); err != nil || got == nil {
			t.Fatalf("%s: the session's request did not go on: %v", tt.scope, err)
		}
		want := ""
		if tt.wantUnion {
			want = wechattest.WebUnionID("mallory")
		}
		if u := got.Get("X-WX-UNIONID"); u != want || got.Get("X-WX-OPENID") == "" {
			t.Errorf("%s: the upstream got X-WX-UNIONID %q (openid %q), want %q", tt.scope, u, got.Get("X-WX-OPENID"), want)
		}
	}

	h := newBenchHandler(t, func(h *Handler) {
		benchWeb(h)
		h.Web.Scope = "snsapi_userinfo"
	})
	strangers(t, h)
	cb := sandboxCallback(t, h, weChatUA)
	h.fake.FailNext(wechattest.PathSNSUserInfo, -1)
	w, err := openInWeChat(h, http.MethodGet, cb)
	if err != nil || w.status != http.StatusServiceUnavailable || !strings.Contains(string(w.body), `"wechat_unavailable"`) {
		t.Fatalf("sns/userinfo failing: status %d, err %v: %s", w.status, err, w.body)
	}
	for _, line := range w.hdr["Set-Cookie"] {
		if strings.HasPrefix(line, weblogin.SessionCookieHTTP+"=") {
			t.Fatalf("sns/userinfo failing: a session was set: %q", line)
		}
	}
}

// A QR login's exchange answers the unionid whenever the website app is
// bound: one without it is not asked of sns/userinfo again.
func TestQRLoginWithoutUnionIDMakesNoUserInfoCall(t *testing.T) {
	h := newBenchHandler(t, func(h *Handler) {
		benchWeb(h)
		h.Web.QRApp = "wxb1b1b1b1b1b1b1b1"
		h.Web.Scope = "snsapi_userinfo"
	})
	h.fake.SetWebUnionID(h.Web.QRApp, false)
	t.Cleanup(func() { h.fake.SetWebUnionID(h.Web.QRApp, true) })
	calls := h.fake.Calls(wechattest.PathSNSUserInfo)
	u := "http://api.example.com" + h.RoutePrefix + "/web/login?user=mallory"
	var cookies []string
	for range 3 {
		w := newDiscardWriter()
		r, _ := http.NewRequest(http.MethodGet, u, nil)
		r.Header.Set("User-Agent", "Mozilla/5.0")
		for _, c := range cookies {
			r.Header.Add("Cookie", c[:strings.IndexByte(c, ';')])
		}
		if err := h.ServeHTTP(w, r, okHandler{}); err != nil || w.status != http.StatusFound {
			t.Fatalf("GET %s: status %d, err %v: %s", u, w.status, err, w.body)
		}
		cookies = append(cookies, w.hdr["Set-Cookie"]...)
		u = w.hdr.Get("Location")
	}
	if u != "http://api.example.com/" {
		t.Fatalf("the QR login ended at %q", u)
	}
	if n := h.fake.Calls(wechattest.PathSNSUserInfo) - calls; n != 0 {
		t.Errorf("%d calls of sns/userinfo for a QR login, want none", n)
	}
}

// strangers makes the users of h's Official Account non-followers in the
// process's sandbox WeChat for the rest of the test.
func strangers(t *testing.T, h *Handler) {
	h.fake.SetWebFollowers(h.Web.OAApp, false)
	t.Cleanup(func() { h.fake.SetWebFollowers(h.Web.OAApp, true) })
}

// A code WeChat refuses on the web is answered invalid_code with the
// browser's way out, not the mini program's wx.login.
func TestWebCallbackRefusedCodeSaysStartAgain(t *testing.T) {
	h := newBenchHandler(t, benchWeb)
	cb, err := url.Parse(sandboxCallback(t, h, weChatUA))
	if err != nil {
		t.Fatal(err)
	}
	q := cb.Query()
	q.Set("code", "0a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P") // well formed, never issued: 40029
	cb.RawQuery = q.Encode()
	w, err := openInWeChat(h, http.MethodGet, cb.String())
	if err != nil || w.status != http.StatusUnauthorized {
		t.Fatalf("status %d, err %v: %s", w.status, err, w.body)
	}
	body := string(w.body)
	if !strings.Contains(body, `"invalid_code"`) || !strings.Contains(body, "start the login again") || strings.Contains(body, "wx.login") {
		t.Fatalf("answer %s: want invalid_code telling the browser to start the login again", body)
	}
}

// TestWebErrorIsAPageInABrowser: a snapshot view of a page, opened in
// WeChat's browser, gets its 403 as a page telling the person what to do,
// with the JSON answer in it; a client that asks for no HTML (an API
// client, curl) gets the JSON answer alone, as on every route.
func TestWebErrorIsAPageInABrowser(t *testing.T) {
	h := newBenchHandler(t, benchWeb)
	h.fake.SetSnapshotUsers(true)
	t.Cleanup(func() { h.fake.SetSnapshotUsers(false) })
	for _, tc := range []struct {
		accept, wantType string
	}{
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "text/html; charset=utf-8"},
		{"", "application/json; charset=utf-8"},
		{"application/json", "application/json; charset=utf-8"},
	} {
		w := newDiscardWriter()
		r, _ := http.NewRequest(http.MethodGet, sandboxCallback(t, h, weChatUA), nil)
		r.Header.Set("User-Agent", weChatUA)
		r.Header.Set("Accept", tc.accept)
		if err := h.ServeHTTP(w, r, okHandler{}); err != nil || w.status != http.StatusForbidden {
			t.Fatalf("Accept %q: status %d, err %v: %s", tc.accept, w.status, err, w.body)
		}
		if got := w.hdr.Get("Content-Type"); got != tc.wantType {
			t.Errorf("Accept %q: Content-Type %q, want %q", tc.accept, got, tc.wantType)
		}
		body := string(w.body)
		if strings.HasPrefix(tc.wantType, "text/html") {
			if !strings.Contains(body, "使用完整服务") || !strings.Contains(body, `{&#34;error&#34;:&#34;snapshot_user&#34;`) ||
				w.hdr.Get("Content-Security-Policy") != "default-src 'none'; frame-ancestors 'self'" || w.hdr.Get("X-Frame-Options") != "SAMEORIGIN" ||
				// Its URL holds the callback's code: a link followed sends only the origin.
				w.hdr.Get("Referrer-Policy") != "strict-origin" {
				t.Errorf("the page reads %s (CSP %q, Referrer-Policy %q)", body, w.hdr.Get("Content-Security-Policy"), w.hdr.Get("Referrer-Policy"))
			}
		} else if !strings.HasPrefix(body, `{"error":"snapshot_user"`) {
			t.Errorf("Accept %q: answer %s", tc.accept, body)
		}
		for _, c := range w.hdr.Values("Set-Cookie") {
			if strings.HasPrefix(c, weblogin.SessionCookieHTTP+"=") {
				t.Errorf("Accept %q: a session cookie was set: %q", tc.accept, c)
			}
		}
	}
	// A HEAD gets the headers its GET would.
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		w := newDiscardWriter()
		r, _ := http.NewRequest(method, "http://api.example.com"+h.RoutePrefix+"/web/login?return_to=//evil.example/", nil)
		r.Header.Set("Accept", "text/html")
		if err := h.ServeHTTP(w, r, okHandler{}); err != nil || w.status != http.StatusBadRequest || w.hdr.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Errorf("%s of a login with a foreign return_to: %d %q, err %v", method, w.status, w.hdr.Get("Content-Type"), err)
		}
	}
}

// weChatUA is the User-Agent of WeChat's own browser.
const weChatUA = "Mozilla/5.0 MicroMessenger/8.0.44"

// openInWeChat serves method u, as WeChat's browser sends it, through h.
func openInWeChat(h *Handler, method, u string) (*discardWriter, error) {
	w := newDiscardWriter()
	r, _ := http.NewRequest(method, u, nil)
	r.Header.Set("User-Agent", weChatUA)
	return w, h.ServeHTTP(w, r, okHandler{})
}

// sandboxCallback begins a web login with userAgent, goes through the
// sandbox's WeChat page and returns the callback URL, not yet loaded.
func sandboxCallback(t *testing.T, h *Handler, userAgent string) string {
	t.Helper()
	return sandboxCallbackWith(t, h, userAgent, "user=mallory")
}

// sandboxCallbackWith is sandboxCallback with the login's query.
func sandboxCallbackWith(t *testing.T, h *Handler, userAgent, query string) string {
	t.Helper()
	u := "http://api.example.com" + h.RoutePrefix + "/web/login?" + query
	for range 2 {
		w := newDiscardWriter()
		r, _ := http.NewRequest(http.MethodGet, u, nil)
		r.Header.Set("User-Agent", userAgent)
		r = r.WithContext(miniProgramRequest("").Context())
		if err := h.ServeHTTP(w, r, okHandler{}); err != nil || w.status != http.StatusFound {
			t.Fatalf("GET %s: status %d, err %v: %s", u, w.status, err, w.body)
		}
		u = w.hdr.Get("Location")
	}
	return u
}

// A state cookie may be missing only from a login begun inside WeChat: a
// QR login's callback (begun in another browser, say an attacker's)
// opened in WeChat without its cookie is refused.
func TestQRLoginCallbackNeedsItsStateCookieEvenInWeChat(t *testing.T) {
	h := newBenchHandler(t, func(h *Handler) {
		benchWeb(h)
		h.Web.QRApp = "wxb1b1b1b1b1b1b1b1"
	})
	for _, tt := range []struct {
		startUA string
		want    int
	}{{"Mozilla/5.0", http.StatusBadRequest}, {weChatUA, http.StatusFound}} {
		cb := sandboxCallback(t, h, tt.startUA)
		if w, err := openInWeChat(h, http.MethodGet, cb); err != nil || w.status != tt.want {
			t.Fatalf("login begun with %q, callback in WeChat without a cookie: status %d, want %d, err %v: %s", tt.startUA, w.status, tt.want, err, w.body)
		}
	}
}

// A login begun inside WeChat may come back without its state cookie
// (WeChat's browser drops it), so such a callback cannot tell the
// browser's own login from a link someone else began in his WeChat and
// sent. It never replaces the session the browser holds: that browser
// stays logged in as itself and goes on to return_to, and only a browser
// without a live session is logged in by it.
func TestAnUnboundCallbackNeverReplacesALiveSession(t *testing.T) {
	h := newBenchHandler(t, benchWeb)
	victim := sessionCookieSet(t, mustFollow(t, h, sandboxCallbackWith(t, h, weChatUA, "user=victim")).hdr)
	victimID, aerr := h.authenticateCookie(victim)
	if aerr != nil {
		t.Fatal(aerr)
	}

	// The attacker's own login, begun in his WeChat, its callback not
	// followed: the link he sends.
	link := sandboxCallbackWith(t, h, weChatUA, "user=mallory&return_to=/orders")
	w := newDiscardWriter()
	r, _ := http.NewRequest(http.MethodGet, link, nil)
	r.Header.Set("User-Agent", weChatUA)
	r.Header.Set("Cookie", weblogin.SessionCookieHTTP+"="+victim)
	if err := h.ServeHTTP(w, r, okHandler{}); err != nil {
		t.Fatal(err)
	}
	if w.status != http.StatusFound || w.hdr.Get("Location") != "http://api.example.com/orders" || len(w.hdr["Set-Cookie"]) != 0 {
		t.Fatalf("the link opened by a logged-in browser: status %d, Location %q, Set-Cookie %q: %s", w.status, w.hdr.Get("Location"), w.hdr["Set-Cookie"], w.body)
	}
	if id, aerr := h.authenticateCookie(victim); aerr != nil || id.OpenID != victimID.OpenID {
		t.Fatalf("the browser's session: %v, %v", id, aerr)
	}

	// Without a live session the same kind of link still logs in: WeChat's
	// browser dropping the cookie must not stop a login.
	if w := mustFollow(t, h, sandboxCallbackWith(t, h, weChatUA, "user=mallory")); sessionCookieSet(t, w.hdr) == "" {
		t.Fatal("no session")
	}
}

// mustFollow loads a callback in WeChat without cookies; it must redirect.
func mustFollow(t *testing.T, h *Handler, cb string) *discardWriter {
	t.Helper()
	w, err := openInWeChat(h, http.MethodGet, cb)
	if err != nil || w.status != http.StatusFound {
		t.Fatalf("callback: status %d, err %v: %s", w.status, err, w.body)
	}
	return w
}

// A handoff link opens only on a site whose sessions are its maker's (the
// store of one-time values may be shared with sites of other keys), and
// goes only where the opening site may return to. A refused link is spent.
func TestHandoffLinkIsBoundToItsSite(t *testing.T) {
	a := newBenchHandler(t, func(h *Handler) {
		benchWeb(h)
		h.Web.ReturnTo = []string{"http://api.example.com/", "https://elsewhere.example/"}
	})
	otherKey := newBenchHandler(t, func(h *Handler) {
		benchWeb(h)
		h.SigningKey = "another-site-signing-key-0123456789abcdef"
	})
	narrower := newBenchHandler(t, benchWeb) // a's keys, return_to the site only
	tok := benchLogin(t, a, "user")
	open := func(h *Handler, link string) *discardWriter {
		w := newDiscardWriter()
		r, _ := http.NewRequest(http.MethodGet, link, nil)
		if err := h.ServeHTTP(w, r, okHandler{}); err != nil {
			t.Fatal(err)
		}
		return w
	}
	for _, tt := range []struct {
		name     string
		opener   *Handler
		returnTo string
		want     string
	}{
		{"another site's keys", otherKey, "/", "another site"},
		{"a return_to the opener refuses", narrower, "https://elsewhere.example/x", "return_to"},
	} {
		link := handoffLinkFor(t, a, tok, tt.returnTo)
		w := open(tt.opener, link)
		if w.status != http.StatusBadRequest || len(w.hdr["Set-Cookie"]) != 0 || !strings.Contains(string(w.body), tt.want) {
			t.Errorf("%s: status %d, Set-Cookie %q: %s", tt.name, w.status, w.hdr["Set-Cookie"], w.body)
		}
		if w := open(a, link); w.status != http.StatusBadRequest || !strings.Contains(string(w.body), "already used") {
			t.Errorf("%s: the refused link then opened at its maker: %d %s", tt.name, w.status, w.body)
		}
	}
	if w := open(a, handoffLinkFor(t, a, tok, "https://elsewhere.example/x")); w.status != http.StatusFound || w.hdr.Get("Location") != "https://elsewhere.example/x" {
		t.Fatalf("at its maker: %d to %q: %s", w.status, w.hdr.Get("Location"), w.body)
	}
}

// The sandbox's WeChat pages redirect only to this site's callback, as
// WeChat only to the app's registered domain: any other redirect_uri gets
// the error page (10003) and no code.
func TestSandboxWebPagesRedirectOnlyToTheSiteCallback(t *testing.T) {
	h := newBenchHandler(t, func(h *Handler) {
		benchWeb(h)
		h.Web.QRApp = "wxb1b1b1b1b1b1b1b1"
	})
	p := "http://api.example.com" + h.RoutePrefix
	for _, page := range []struct{ path, appid, scope string }{
		{"/sandbox/connect/qrconnect", "wxb1b1b1b1b1b1b1b1", "snsapi_login"},
		{"/sandbox/connect/oauth2/authorize", "wxa0a0a0a0a0a0a0a0", "snsapi_base"},
	} {
		for _, tt := range []struct {
			redirect string
			want     int
		}{
			{p + "/web/callback", http.StatusFound},
			{"http://evil.example/steal", http.StatusBadRequest},
			{"http://evil.example" + h.RoutePrefix + "/web/callback", http.StatusBadRequest},
			{"https://api.example.com" + h.RoutePrefix + "/web/callback", http.StatusBadRequest},
			{p + "/other", http.StatusBadRequest},
			{"http://api.example.com@evil.example" + h.RoutePrefix + "/web/callback", http.StatusBadRequest},
		} {
			u := p + page.path + "?appid=" + page.appid + "&redirect_uri=" + url.QueryEscape(tt.redirect) +
				"&response_type=code&scope=" + page.scope + "&state=abc"
			w := newDiscardWriter()
			r, _ := http.NewRequest(http.MethodGet, u, nil)
			if err := h.ServeHTTP(w, r, okHandler{}); err != nil || w.status != tt.want {
				t.Errorf("%s to %s: status %d, want %d, err %v: %s", page.path, tt.redirect, w.status, tt.want, err, w.body)
			}
			if loc := w.hdr.Get("Location"); tt.want != http.StatusFound && loc != "" {
				t.Errorf("%s to %s: redirected to %q", page.path, tt.redirect, loc)
			}
		}
	}
}

// A browser that begins login after login (a page sending it to login in
// a loop) holds at most 4 state cookies, not one per login for 10
// minutes, which would outgrow a proxy's header buffer; the logins begun
// last still finish, as one begun in another tab must.
func TestWebLoginStartsKeepAtMostFourStateCookies(t *testing.T) {
	h := newBenchHandler(t, func(h *Handler) {
		benchWeb(h)
		h.Web.QRApp = "wxb1b1b1b1b1b1b1b1" // a QR login's callback always needs its cookie
	})
	jar, _ := cookiejar.New(nil)
	site, _ := url.Parse("http://api.example.com/")
	get := func(u string) *discardWriter {
		t.Helper()
		r, _ := http.NewRequest(http.MethodGet, u, nil)
		r.Header.Set("User-Agent", "Mozilla/5.0")
		for _, c := range jar.Cookies(site) {
			r.AddCookie(c)
		}
		r = r.WithContext(miniProgramRequest("").Context())
		w := newDiscardWriter()
		if err := h.ServeHTTP(w, r, okHandler{}); err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		jar.SetCookies(site, (&http.Response{Header: w.hdr}).Cookies())
		return w
	}
	stateCookies := func() (n int) {
		for _, c := range jar.Cookies(site) {
			if strings.HasPrefix(c.Name, "wx_state_") {
				n++
			}
		}
		return n
	}
	var callbacks []string
	for i := range 10 {
		w := get("http://api.example.com" + h.RoutePrefix + "/web/login?user=u" + string(rune('0'+i)))
		if w.status != http.StatusFound {
			t.Fatalf("login %d: status %d: %s", i, w.status, w.body)
		}
		if n := stateCookies(); n > 4 || n != min(i+1, 4) {
			t.Fatalf("after login %d the browser holds %d state cookies", i, n)
		}
		w = get(w.hdr.Get("Location"))
		if w.status != http.StatusFound {
			t.Fatalf("login %d at the sandbox page: status %d: %s", i, w.status, w.body)
		}
		callbacks = append(callbacks, w.hdr.Get("Location"))
	}
	if w := get(callbacks[5]); w.status != http.StatusBadRequest {
		t.Fatalf("the newest login whose cookie was cleared: status %d, want 400", w.status)
	}
	for i := 6; i < 10; i++ {
		if w := get(callbacks[i]); w.status != http.StatusFound || w.hdr.Get("Location") != "http://api.example.com/" {
			t.Fatalf("login %d, among the kept: status %d to %q: %s", i, w.status, w.hdr.Get("Location"), w.body)
		}
	}
	if n := stateCookies(); n != 0 {
		t.Fatalf("%d state cookies left after the kept logins finished", n)
	}
}

// A callback whose code exchange fails on WeChat's side has spent its
// state: loading it again cannot work, so its 503 tells the browser to
// start the login again rather than to retry.
func TestWebCallbackUnavailableSaysStartAgain(t *testing.T) {
	h := &Handler{Apps: []App{{AppID: siteAppID, AppSecret: siteSecret}, {AppID: "wxa0a0a0a0a0a0a0a0", AppSecret: "oa-secret-not-for-logs"}}}
	benchWeb(h)
	s := newSite(t, h, wechattest.Options{})
	ua := http.Header{"User-Agent": {weChatUA}}
	begin := s.serve(http.MethodGet, "http://api.example.com"+h.RoutePrefix+"/web/login", "", "", ua)
	loc, err := url.Parse(begin.Header().Get("Location"))
	if begin.Code != http.StatusFound || err != nil {
		t.Fatalf("login: %d %v", begin.Code, err)
	}
	state := loc.Query().Get("state")
	hdr := http.Header{"User-Agent": {weChatUA}}
	for _, c := range begin.Result().Cookies() {
		hdr.Add("Cookie", c.Name+"="+c.Value)
	}
	s.fake.HostileNext(wechattest.PathOAuthAccessToken, wechattest.EchoHTML)
	// A code of this run alone: a code once used is refused on every run
	// that shares the store (-count=2).
	code := fmt.Sprintf("0a1B2c3D4e5F6g7H8i9J%012d", time.Now().UnixNano()%1e12)
	cb := "http://api.example.com" + h.RoutePrefix + "/web/callback?code=" + code + "&state=" + state
	w := s.serve(http.MethodGet, cb, "", "", hdr)
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), `"wechat_unavailable"`) {
		t.Fatalf("callback with WeChat down: %d %s", w.Code, w.Body)
	}
	if !strings.Contains(w.Body.String(), "start the login again") {
		t.Fatalf("the 503 does not say to start the login again: %s", w.Body)
	}
	// It is so: the same callback again is an unknown login.
	if again := s.serve(http.MethodGet, cb, "", "", hdr); again.Code != http.StatusBadRequest {
		t.Fatalf("the callback loaded again: %d %s", again.Code, again.Body)
	}
}

// A login finishes only on a site of the app it began with that may
// return where it was to go: the store of one-time values may be shared
// with other sites, and another site's callback must not make a session
// of an app it does not serve, nor send the browser where it may not. A
// refused state is spent.
func TestWebCallbackOfAnotherSiteIsRefused(t *testing.T) {
	a := newBenchHandler(t, func(h *Handler) {
		benchWeb(h)
		h.Web.ReturnTo = []string{"http://api.example.com/", "https://elsewhere.example/"}
	})
	otherApp := newBenchHandler(t, func(h *Handler) {
		benchWeb(h)
		h.Web.OAApp = "wxd3d3d3d3d3d3d3d3"
	})
	narrower := newBenchHandler(t, benchWeb) // a's app, return_to the site only
	for _, tt := range []struct {
		name   string
		finish *Handler
		query  string
	}{
		{"another app", otherApp, "user=mallory"},
		{"a return_to the finishing site refuses", narrower, "user=mallory&return_to=https://elsewhere.example/x"},
	} {
		cb := sandboxCallbackWith(t, a, weChatUA, tt.query)
		w, err := openInWeChat(tt.finish, http.MethodGet, cb)
		if err != nil || w.status != http.StatusBadRequest || len(w.hdr["Set-Cookie"]) != 0 || !strings.Contains(string(w.body), "another site") {
			t.Errorf("%s: status %d, err %v, Set-Cookie %q: %s", tt.name, w.status, err, w.hdr["Set-Cookie"], w.body)
		}
		if w, _ := openInWeChat(a, http.MethodGet, cb); w.status != http.StatusBadRequest {
			t.Errorf("%s: the refused state then finished at its site: %d %s", tt.name, w.status, w.body)
		}
	}
	cb := sandboxCallbackWith(t, a, weChatUA, "user=mallory&return_to=https://elsewhere.example/x")
	if w, err := openInWeChat(a, http.MethodGet, cb); err != nil || w.status != http.StatusFound || w.hdr.Get("Location") != "https://elsewhere.example/x" {
		t.Fatalf("at its site: %d to %q, err %v: %s", w.status, w.hdr.Get("Location"), err, w.body)
	}
}

// A code makes one session, whatever state it comes back with: a second
// login finished with the first one's code is refused as WeChat refuses a
// used code, even where the code would be taken again (the sandbox), with
// the memory store and with Redis.
func TestWebCodeMakesOneSession(t *testing.T) {
	for _, store := range []string{"", redistest.Start(t).URL} {
		h := newBenchHandler(t, func(h *Handler) {
			benchWeb(h)
			h.Store = store
		})
		webCodeMakesOneSession(t, h)
	}
}

func webCodeMakesOneSession(t *testing.T, h *Handler) {
	t.Helper()
	first, err := url.Parse(sandboxCallback(t, h, weChatUA))
	if err != nil {
		t.Fatal(err)
	}
	second, err := url.Parse(sandboxCallback(t, h, weChatUA))
	if err != nil {
		t.Fatal(err)
	}
	q := second.Query()
	q.Set("code", first.Query().Get("code"))
	second.RawQuery = q.Encode()
	if w, err := openInWeChat(h, http.MethodGet, first.String()); err != nil || w.status != http.StatusFound {
		t.Fatalf("the first login: status %d, err %v: %s", w.status, err, w.body)
	}
	w, err := openInWeChat(h, http.MethodGet, second.String())
	if err != nil || w.status != http.StatusUnauthorized || len(w.hdr["Set-Cookie"]) > 1 || !strings.Contains(string(w.body), `"invalid_code"`) {
		t.Fatalf("another login with the same code: status %d, err %v, Set-Cookie %q: %s", w.status, err, w.hdr["Set-Cookie"], w.body)
	}
	for _, line := range w.hdr["Set-Cookie"] {
		if strings.HasPrefix(line, weblogin.SessionCookieHTTP+"=") {
			t.Fatalf("another login with the same code set a session: %q", line)
		}
	}
}
