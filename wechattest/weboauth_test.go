package wechattest_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

const webApp = "wxwebofficial0001"

// webFake serves a fake with a mini program and an Official Account.
func webFake(t *testing.T, opts wechattest.Options) (*wechattest.Server, string) {
	t.Helper()
	s := wechattest.NewServer(opts)
	s.AddApp(appID, secret)
	s.AddApp(webApp, secret)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL
}

// noFollow is a client that shows redirects instead of following them.
var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// authorize opens an authorization page and returns where it sends the
// browser back (nil when it does not redirect) and its status.
func authorize(t *testing.T, base, path string, q url.Values) (*url.URL, int) {
	t.Helper()
	resp, err := noFollow.Get(base + path + "?" + q.Encode() + "#wechat_redirect")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return nil, resp.StatusCode
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc, resp.StatusCode
}

func authQuery(appid, scope, state, user string) url.Values {
	q := url.Values{"appid": {appid}, "redirect_uri": {"https://site.example/wx/web/callback?x=1"}, "response_type": {"code"}, "scope": {scope}, "state": {state}}
	if user != "" {
		q.Set("user", user)
	}
	return q
}

type webAnswer struct {
	ErrCode        int    `json:"errcode"`
	AccessToken    string `json:"access_token"`
	ExpiresIn      int    `json:"expires_in"`
	RefreshToken   string `json:"refresh_token"`
	OpenID         string `json:"openid"`
	Scope          string `json:"scope"`
	UnionID        string `json:"unionid"`
	IsSnapshotUser int    `json:"is_snapshotuser"`
	Nickname       string `json:"nickname"`
}

func getJSON(t *testing.T, u string) webAnswer {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a webAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	return a
}

func exchange(t *testing.T, base, appid, code string) webAnswer {
	t.Helper()
	q := url.Values{"appid": {appid}, "secret": {secret}, "code": {code}, "grant_type": {"authorization_code"}}
	return getJSON(t, base+wechattest.PathOAuthAccessToken+"?"+q.Encode())
}

func TestAuthorizePageRedirectsBackWithACodeForTheUser(t *testing.T) {
	for _, tt := range []struct{ path, scope string }{
		{wechattest.PathOAuthAuthorize, "snsapi_base"},
		{wechattest.PathOAuthAuthorize, "snsapi_userinfo"},
		{wechattest.PathQRConnect, "snsapi_login"},
	} {
		t.Run(tt.path+" "+tt.scope, func(t *testing.T) {
			s, base := webFake(t, wechattest.Options{})
			loc, status := authorize(t, base, tt.path, authQuery(webApp, tt.scope, "St4te", "alice"))
			if loc == nil {
				t.Fatalf("status %d, want a redirect", status)
			}
			if loc.Host != "site.example" || loc.Path != "/wx/web/callback" || loc.Query().Get("x") != "1" || loc.Query().Get("state") != "St4te" {
				t.Fatalf("sent back to %s", loc)
			}
			code := loc.Query().Get("code")
			if len(code) != 32 {
				t.Fatalf("code %q", code)
			}
			a := exchange(t, base, webApp, code)
			if a.ErrCode != 0 || a.OpenID != wechattest.WebOpenID(webApp, "alice") || a.UnionID != wechattest.WebUnionID("alice") ||
				a.Scope != tt.scope || a.AccessToken == "" || a.ExpiresIn != 7200 || a.IsSnapshotUser != 0 {
				t.Fatalf("exchange answered %+v", a)
			}
			got := s.AuthorizeRequests()
			want := wechattest.AuthorizeRequest{Path: tt.path, AppID: webApp, RedirectURI: "https://site.example/wx/web/callback?x=1", ResponseType: "code", Scope: tt.scope, State: "St4te", User: "alice"}
			if len(got) != 1 || got[0] != want {
				t.Fatalf("recorded %+v, want %+v", got, want)
			}
		})
	}
}

func TestWebOpenIDsDifferPerAppUnionIDDoesNot(t *testing.T) {
	s, base := webFake(t, wechattest.Options{})
	s.AddApp("wxwebsite00000001", secret)
	var openids, unionids []string
	for _, app := range []string{webApp, "wxwebsite00000001"} {
		path, scope := wechattest.PathOAuthAuthorize, "snsapi_base"
		if app != webApp {
			path, scope = wechattest.PathQRConnect, "snsapi_login"
		}
		loc, _ := authorize(t, base, path, authQuery(app, scope, "s", "bob"))
		a := exchange(t, base, app, loc.Query().Get("code"))
		openids = append(openids, a.OpenID)
		unionids = append(unionids, a.UnionID)
	}
	if openids[0] == openids[1] || unionids[0] != unionids[1] || unionids[0] == "" {
		t.Fatalf("openids %q unionids %q", openids, unionids)
	}
	loc, _ := authorize(t, base, wechattest.PathOAuthAuthorize, authQuery(webApp, "snsapi_base", "s", "carol"))
	if a := exchange(t, base, webApp, loc.Query().Get("code")); a.OpenID == openids[0] || a.UnionID == unionids[0] {
		t.Fatal("another user got the same ids")
	}
	s.SetWebUnionID(webApp, false)
	loc, _ = authorize(t, base, wechattest.PathOAuthAuthorize, authQuery(webApp, "snsapi_base", "s", "bob"))
	if a := exchange(t, base, webApp, loc.Query().Get("code")); a.UnionID != "" || a.OpenID != openids[0] {
		t.Fatalf("an unbound app answered %+v", a)
	}
}

// A user who does not follow the Official Account gets no unionid from
// the code exchange; sns/userinfo, with snsapi_userinfo, answers it. The
// QR login's exchange answers it either way.
func TestNonFollowersUnionIDComesFromUserInfo(t *testing.T) {
	s, base := webFake(t, wechattest.Options{})
	s.SetWebFollowers(webApp, false)
	want := wechattest.WebUnionID("dora")
	for _, scope := range []string{"snsapi_base", "snsapi_userinfo"} {
		loc, _ := authorize(t, base, wechattest.PathOAuthAuthorize, authQuery(webApp, scope, "s", "dora"))
		if a := exchange(t, base, webApp, loc.Query().Get("code")); a.UnionID != "" || a.OpenID == "" {
			t.Fatalf("%s: a stranger's exchange answered %+v", scope, a)
		}
	}
	loc, _ := authorize(t, base, wechattest.PathOAuthAuthorize, authQuery(webApp, "snsapi_userinfo", "s", "dora"))
	a := exchange(t, base, webApp, loc.Query().Get("code"))
	u := getJSON(t, base+wechattest.PathSNSUserInfo+"?"+url.Values{"access_token": {a.AccessToken}, "openid": {a.OpenID}}.Encode())
	if u.UnionID != want {
		t.Fatalf("userinfo answered %+v", u)
	}
	loc, _ = authorize(t, base, wechattest.PathQRConnect, authQuery(webApp, "snsapi_login", "s", "dora"))
	if a := exchange(t, base, webApp, loc.Query().Get("code")); a.UnionID != want {
		t.Fatalf("QR login answered %+v", a)
	}
	s.SetWebFollowers(webApp, true)
	loc, _ = authorize(t, base, wechattest.PathOAuthAuthorize, authQuery(webApp, "snsapi_base", "s", "dora"))
	if a := exchange(t, base, webApp, loc.Query().Get("code")); a.UnionID != want {
		t.Fatalf("a follower's exchange answered %+v", a)
	}
}

func TestAuthorizePageWithoutUserPicksTheDefault(t *testing.T) {
	_, base := webFake(t, wechattest.Options{})
	loc, _ := authorize(t, base, wechattest.PathOAuthAuthorize, authQuery(webApp, "snsapi_base", "", ""))
	if loc.Query().Get("state") != "" || !loc.Query().Has("state") {
		t.Fatalf("empty state not carried back: %s", loc)
	}
	if a := exchange(t, base, webApp, loc.Query().Get("code")); a.OpenID != wechattest.WebOpenID(webApp, wechattest.DefaultWebUser) {
		t.Fatalf("answered %+v", a)
	}
}

func TestAuthorizePageDeclined(t *testing.T) {
	s, base := webFake(t, wechattest.Options{})
	q := authQuery(webApp, "snsapi_userinfo", "abc", "alice")
	q.Set("decline", "1")
	loc, _ := authorize(t, base, wechattest.PathOAuthAuthorize, q)
	if loc == nil || loc.Query().Has("code") || loc.Query().Get("state") != "abc" {
		t.Fatalf("declined: sent back to %v", loc)
	}
	if r := s.AuthorizeRequests(); len(r) != 1 || !r[0].Declined || r[0].User != "" {
		t.Fatalf("recorded %+v", r)
	}
}

func TestAuthorizePageRefusesBadRequests(t *testing.T) {
	long := strings.Repeat("a", 129)
	tests := []struct {
		name, path string
		edit       func(url.Values)
	}{
		{"unknown appid", wechattest.PathOAuthAuthorize, func(q url.Values) { q.Set("appid", "wxnobody") }},
		{"no appid", wechattest.PathOAuthAuthorize, func(q url.Values) { q.Del("appid") }},
		{"response_type token", wechattest.PathOAuthAuthorize, func(q url.Values) { q.Set("response_type", "token") }},
		{"no response_type", wechattest.PathOAuthAuthorize, func(q url.Values) { q.Del("response_type") }},
		{"login scope inside WeChat", wechattest.PathOAuthAuthorize, func(q url.Values) { q.Set("scope", "snsapi_login") }},
		{"base scope on qrconnect", wechattest.PathQRConnect, func(q url.Values) {}},
		{"two scopes", wechattest.PathOAuthAuthorize, func(q url.Values) { q.Set("scope", "snsapi_base,snsapi_userinfo") }},
		{"state too long", wechattest.PathOAuthAuthorize, func(q url.Values) { q.Set("state", long) }},
		{"state with a dash", wechattest.PathOAuthAuthorize, func(q url.Values) { q.Set("state", "a-b") }},
		{"state with a space", wechattest.PathOAuthAuthorize, func(q url.Values) { q.Set("state", "a b") }},
		{"relative redirect_uri", wechattest.PathOAuthAuthorize, func(q url.Values) { q.Set("redirect_uri", "/wx/web/callback") }},
		{"javascript redirect_uri", wechattest.PathOAuthAuthorize, func(q url.Values) { q.Set("redirect_uri", "javascript:alert(1)") }},
		{"redirect_uri with fragment", wechattest.PathOAuthAuthorize, func(q url.Values) { q.Set("redirect_uri", "https://site.example/cb#x") }},
		{"redirect_uri with userinfo", wechattest.PathOAuthAuthorize, func(q url.Values) { q.Set("redirect_uri", "https://u@site.example/cb") }},
		{"no redirect_uri", wechattest.PathOAuthAuthorize, func(q url.Values) { q.Del("redirect_uri") }},
		{"bad user", wechattest.PathOAuthAuthorize, func(q url.Values) { q.Set("user", "a/b") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, base := webFake(t, wechattest.Options{})
			q := authQuery(webApp, "snsapi_base", "abc", "")
			tt.edit(q)
			if loc, status := authorize(t, base, tt.path, q); loc != nil || status != http.StatusBadRequest {
				t.Fatalf("status %d, sent to %v", status, loc)
			}
			if r := s.AuthorizeRequests(); len(r) != 1 || r[0].Error == "" || r[0].User != "" {
				t.Fatalf("recorded %+v", r)
			}
		})
	}
}

func TestAuthorizePageChecksTheOAuthDomain(t *testing.T) {
	s, base := webFake(t, wechattest.Options{})
	s.SetOAuthDomain(webApp, "site.example")
	if loc, _ := authorize(t, base, wechattest.PathOAuthAuthorize, authQuery(webApp, "snsapi_base", "a", "")); loc == nil {
		t.Fatal("the configured domain was refused")
	}
	q := authQuery(webApp, "snsapi_base", "a", "")
	q.Set("redirect_uri", "https://evil.example/cb")
	if loc, status := authorize(t, base, wechattest.PathOAuthAuthorize, q); loc != nil || status != http.StatusBadRequest {
		t.Fatalf("another domain: status %d", status)
	}
}

func TestOAuthCodesAreSingleUseBoundToTheAppAndExpire(t *testing.T) {
	c := newClock()
	s, base := webFake(t, wechattest.Options{Now: c.Now})
	loc, _ := authorize(t, base, wechattest.PathOAuthAuthorize, authQuery(webApp, "snsapi_base", "a", ""))
	code := loc.Query().Get("code")
	if a := exchange(t, base, appID, code); a.ErrCode != wechattest.ErrInvalidCode {
		t.Fatalf("another app's exchange: %+v", a)
	}
	if a := exchange(t, base, webApp, code); a.ErrCode != 0 {
		t.Fatalf("first use: %+v", a)
	}
	if a := exchange(t, base, webApp, code); a.ErrCode != wechattest.ErrCodeUsed {
		t.Fatalf("second use: %+v", a)
	}
	loc, _ = authorize(t, base, wechattest.PathOAuthAuthorize, authQuery(webApp, "snsapi_base", "a", ""))
	c.Advance(wechattest.CodeTTL + time.Second)
	if a := exchange(t, base, webApp, loc.Query().Get("code")); a.ErrCode != wechattest.ErrInvalidCode {
		t.Fatalf("expired: %+v", a)
	}
	if a := exchange(t, base, webApp, "never-issued"); a.ErrCode != wechattest.ErrInvalidCode {
		t.Fatalf("unknown: %+v", a)
	}
	s.AddWebCode(webApp, "registered", "dave", "snsapi_userinfo")
	if a := exchange(t, base, webApp, "registered"); a.OpenID != wechattest.WebOpenID(webApp, "dave") || a.Scope != "snsapi_userinfo" {
		t.Fatalf("registered code: %+v", a)
	}
}

func TestOAuthAccessTokenChecksTheApp(t *testing.T) {
	_, base := webFake(t, wechattest.Options{})
	for _, tt := range []struct {
		q       url.Values
		errcode int
	}{
		{url.Values{"appid": {webApp}, "secret": {"wrong"}, "code": {"c"}, "grant_type": {"authorization_code"}}, wechattest.ErrInvalidSecret},
		{url.Values{"appid": {"wxnobody"}, "secret": {secret}, "code": {"c"}, "grant_type": {"authorization_code"}}, wechattest.ErrInvalidAppID},
		{url.Values{"secret": {secret}, "code": {"c"}, "grant_type": {"authorization_code"}}, wechattest.ErrAppIDMissing},
		{url.Values{"appid": {webApp}, "code": {"c"}, "grant_type": {"authorization_code"}}, wechattest.ErrSecretMissing},
		{url.Values{"appid": {webApp}, "secret": {secret}, "code": {"c"}, "grant_type": {"client_credential"}}, wechattest.ErrInvalidGrant},
		{url.Values{"appid": {webApp}, "secret": {secret}, "grant_type": {"authorization_code"}}, wechattest.ErrCodeMissing},
	} {
		if a := getJSON(t, base+wechattest.PathOAuthAccessToken+"?"+tt.q.Encode()); a.ErrCode != tt.errcode {
			t.Errorf("%v: errcode %d, want %d", tt.q, a.ErrCode, tt.errcode)
		}
	}
}

func TestSnapshotUsers(t *testing.T) {
	s, base := webFake(t, wechattest.Options{})
	s.SetSnapshotUsers(true)
	loc, _ := authorize(t, base, wechattest.PathOAuthAuthorize, authQuery(webApp, "snsapi_base", "a", ""))
	if a := exchange(t, base, webApp, loc.Query().Get("code")); a.IsSnapshotUser != 1 {
		t.Fatalf("switch on: %+v", a)
	}
	s.SetSnapshotUsers(false)
	q := authQuery(webApp, "snsapi_base", "a", "")
	loc, _ = authorize(t, base, wechattest.PathOAuthAuthorize, q)
	if a := exchange(t, base, webApp, loc.Query().Get("code")); a.IsSnapshotUser != 0 {
		t.Fatalf("switch off: %+v", a)
	}
	q.Set("snapshot", "1")
	loc, _ = authorize(t, base, wechattest.PathOAuthAuthorize, q)
	if a := exchange(t, base, webApp, loc.Query().Get("code")); a.IsSnapshotUser != 1 {
		t.Fatalf("?snapshot=1: %+v", a)
	}
}

func TestSNSUserInfo(t *testing.T) {
	c := newClock()
	_, base := webFake(t, wechattest.Options{Now: c.Now})
	token := func(scope string) webAnswer {
		path := wechattest.PathOAuthAuthorize
		if scope == "snsapi_login" {
			path = wechattest.PathQRConnect
		}
		loc, _ := authorize(t, base, path, authQuery(webApp, scope, "a", "erin"))
		return exchange(t, base, webApp, loc.Query().Get("code"))
	}
	info := func(tok, openid string) webAnswer {
		return getJSON(t, base+wechattest.PathSNSUserInfo+"?"+url.Values{"access_token": {tok}, "openid": {openid}}.Encode())
	}
	for _, scope := range []string{"snsapi_userinfo", "snsapi_login"} {
		a := token(scope)
		if u := info(a.AccessToken, a.OpenID); u.ErrCode != 0 || u.OpenID != a.OpenID || u.UnionID != a.UnionID || u.Nickname == "" {
			t.Fatalf("%s: userinfo %+v", scope, u)
		}
		if u := info(a.AccessToken, "oSomeoneElse"); u.ErrCode != wechattest.ErrInvalidOpenID {
			t.Fatalf("another openid: %+v", u)
		}
	}
	base0 := token("snsapi_base")
	if u := info(base0.AccessToken, base0.OpenID); u.ErrCode != wechattest.ErrAPIUnauthorized {
		t.Fatalf("snsapi_base token: %+v", u)
	}
	if u := info("forged", base0.OpenID); u.ErrCode != wechattest.ErrInvalidToken {
		t.Fatalf("forged token: %+v", u)
	}
	a := token("snsapi_userinfo")
	c.Advance(wechattest.OAuthTokenTTL)
	if u := info(a.AccessToken, a.OpenID); u.ErrCode != wechattest.ErrTokenExpired {
		t.Fatalf("expired token: %+v", u)
	}
}

// A sandbox faces anyone: the pages it is sent must not pile up records.
func TestAuthorizeRecordsAreBounded(t *testing.T) {
	s := wechattest.NewServer(wechattest.Options{})
	s.AddApp(webApp, secret)
	for i := 0; i < 150; i++ {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest("GET", wechattest.PathOAuthAuthorize+"?"+authQuery(webApp, "snsapi_base", "a", "").Encode(), nil))
		if w.Code != http.StatusFound {
			t.Fatalf("status %d", w.Code)
		}
	}
	if n := len(s.AuthorizeRequests()); n != 100 {
		t.Fatalf("%d requests recorded", n)
	}
}
