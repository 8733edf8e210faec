package wechatauth

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	_ "github.com/caddyserver/caddy/v2/modules/filestorage"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-wechat/wechatauth/internal/credential"
	"github.com/caddy-wechat/wechatauth/internal/idheader"
	"github.com/caddy-wechat/wechatauth/wechattest"
)

func TestStripIdentityDeletesEveryClientIdentityHeader(t *testing.T) {
	h := &Handler{HeaderOpenID: "X-User", HeaderUnionID: "Union_Id", HeaderAppID: "X-App"}
	h.setDefaults()
	tests := []struct {
		name    string
		deleted bool
	}{
		{"X-WX-OPENID", true},
		{"X-Wx-Openid", true},
		{"x-wx-unionid", true},
		{"X_WX_OPENID", true},
		{"x_wx_appid", true},
		{"X-Wx_Openid", true},
		{"X-Wx-Source", true},
		{"X-WX-ENV", true},
		{"X-WX-FROM-APPID", true},
		{"X-WX-", true},
		{"X-User", true},
		{"x-user", true},
		{"x_user", true},
		{"X_USER", true},
		{"union-id", true},
		{"UNION_ID", true},
		{"X-App", true},
		{"x_app", true},
		{"X.WX.OPENID", true},
		{"x.wx.source", true},
		{"X.User", true},
		// Every other alias of '-' a CGI-style backend reads as '_'.
		{"X~WX~OPENID", true},
		{"X+Wx+Openid", true},
		{"x!wx#unionid", true},
		{"X$WX%APPID", true},
		{"X&WX'SOURCE", true},
		{"X*WX^ENV", true},
		{"X`WX|OPENID", true},
		{"X~User", true},
		{"union|id", true},
		{"X-Wx~", true},
		{"X/WX/OPENID", false}, // not a token character: no server admits it
		{"X-Wxa", false},
		{"X-Wx", false},
		{"XWX-OPENID", false},
		{"X-Request-Id", false},
		{"X-Users", false},
		{"X-Use", false},
		{"Authorization", false},
		{"Content-Type", false},
		{"X-Forwarded-For", false},
	}
	hdr := http.Header{}
	for _, tt := range tests {
		hdr[tt.name] = []string{"spoofed"} // raw keys: servers do not all canonicalise
	}
	h.strip.Strip(&http.Request{Header: hdr})
	for _, tt := range tests {
		if _, kept := hdr[tt.name]; kept == tt.deleted {
			t.Errorf("%s: deleted = %v, want %v", tt.name, !kept, tt.deleted)
		}
	}
}

func TestStripIdentityWithDefaultNamesKeepsOtherHeaders(t *testing.T) {
	h := &Handler{}
	h.setDefaults()
	hdr := http.Header{"X-Wx-Openid": {"o"}, "X_wx_openid": {"o"}, "X-Request-Id": {"r"}, "X-User": {"u"}}
	h.strip.Strip(&http.Request{Header: hdr})
	if len(hdr) != 2 || hdr["X-Request-Id"] == nil || hdr["X-User"] == nil {
		t.Fatalf("left %v", hdr)
	}
}

func TestBearerTokenReadsOnlyTheBearerScheme(t *testing.T) {
	tests := []struct {
		header string
		tok    string
		ok     bool
	}{
		{"Bearer abc.def.ghi", "abc.def.ghi", true},
		{"bearer abc", "abc", true},
		{"BEARER abc", "abc", true},
		{"Bearer   abc  ", "abc", true},
		{"", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Bearer    ", "", false},
		{"Bearerabc", "", false},
		{"Basic dXNlcjpwYXNz", "", false},
		{"Token abc", "", false},
		{"abc.def.ghi", "", false},
		{" Bearer abc", "", false},
		{"Bear abc", "", false},
	}
	for _, tt := range tests {
		tok, ok := credential.Token(tt.header)
		if tok != tt.tok || ok != tt.ok {
			t.Errorf("credential.Token(%q) = %q, %v; want %q, %v", tt.header, tok, ok, tt.tok, tt.ok)
		}
	}
}

// upstream records what the next handler received.
type upstream struct {
	called int
	header http.Header
	method string
	body   string
	repl   map[string]string
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	u.called++
	u.header = r.Header.Clone()
	u.method = r.Method
	b, _ := io.ReadAll(r.Body)
	u.body = string(b)
	u.repl = map[string]string{}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		for _, k := range []string{"http.auth.user.id", "http.auth.user.unionid", "http.auth.user.appid"} {
			if v, ok := repl.GetString(k); ok {
				u.repl[k] = v
			}
		}
	}
	w.WriteHeader(http.StatusTeapot)
	io.WriteString(w, "upstream")
	return nil
}

const (
	siteAppID  = "wxsite0000000001"
	siteSecret = "site-secret-not-for-logs-7f3a"
)

// site is a provisioned Handler in front of a fake WeChat and a recording
// upstream.
type site struct {
	t    *testing.T
	h    *Handler
	fake *wechattest.Server
	up   *upstream
}

// provision provisions h as Caddy would, with Caddy's storage in a
// temporary directory, and cleans it up after the test.
func provision(t *testing.T, h *Handler) error {
	t.Helper()
	storage, _ := json.Marshal(map[string]string{"module": "file_system", "root": t.TempDir()})
	cfg := &caddy.Config{
		StorageRaw: storage,
		Logging:    &caddy.Logging{Logs: map[string]*caddy.CustomLog{"default": {BaseLog: caddy.BaseLog{Level: "ERROR"}}}},
	}
	ctx, err := caddy.ProvisionContext(cfg)
	if err != nil {
		t.Fatalf("caddy context: %v", err)
	}
	err = h.Provision(ctx)
	t.Cleanup(func() { h.Cleanup() })
	return err
}

// newSite provisions h (app, api_base and signing key filled in when
// empty) against a fake WeChat with opts.
func newSite(t *testing.T, h *Handler, opts wechattest.Options) *site {
	t.Helper()
	fake := wechattest.NewServer(opts)
	if !h.Sandbox {
		if len(h.Apps) == 0 {
			h.Apps = []App{{AppID: siteAppID, AppSecret: siteSecret}}
		}
		for _, a := range h.Apps {
			fake.AddApp(a.AppID, a.AppSecret)
		}
		srv := httptest.NewServer(fake)
		t.Cleanup(srv.Close)
		h.APIBase = srv.URL
	}
	if h.SigningKey == "" {
		h.SigningKey = testSigningKey
	}
	if err := provision(t, h); err != nil {
		t.Fatalf("provision: %v", err)
	}
	return &site{t: t, h: h, fake: fake, up: &upstream{}}
}

// serve sends a request through ServeHTTP, as Caddy would with a replacer
// in the context.
func (s *site) serve(method, target, contentType, body string, hdr http.Header) *httptest.ResponseRecorder {
	s.t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	for k, v := range hdr {
		r.Header[k] = v
	}
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
	w := httptest.NewRecorder()
	if err := s.h.ServeHTTP(w, r, s.up); err != nil {
		s.t.Fatalf("%s %s: ServeHTTP returned %v", method, target, err)
	}
	return w
}

type loginAnswer struct {
	Token     string `json:"token"`
	TokenType string `json:"token_type"`
	ExpiresIn int64  `json:"expires_in"`
	OpenID    string `json:"openid"`
	UnionID   string `json:"unionid"`
}

func (s *site) login(code string) loginAnswer {
	s.t.Helper()
	w := s.serve(http.MethodPost, "/wx/login", "application/json", `{"code":"`+code+`"}`, nil)
	if w.Code != http.StatusOK {
		s.t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	var a loginAnswer
	if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
		s.t.Fatal(err)
	}
	return a
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func TestLoginAnswersTokenAndOpenID(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		unionID     bool
	}{
		{"JSON", "application/json", `{"code":"c1"}`, true},
		{"form", "application/x-www-form-urlencoded", "code=c1", true},
		{"form, no unionid", "application/x-www-form-urlencoded", "code=c1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSite(t, &Handler{}, wechattest.Options{AutoCodes: true, UnionID: tt.unionID})
			w := s.serve(http.MethodPost, "/wx/login", tt.contentType, tt.body, nil)
			if w.Code != http.StatusOK {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			var raw map[string]any
			json.Unmarshal(w.Body.Bytes(), &raw)
			var a loginAnswer
			json.Unmarshal(w.Body.Bytes(), &a)
			if a.Token == "" || a.TokenType != "Bearer" || a.OpenID == "" {
				t.Fatalf("answer %s", w.Body)
			}
			if a.ExpiresIn < 7190 || a.ExpiresIn > 7200 {
				t.Fatalf("expires_in %d, want the default 2h", a.ExpiresIn)
			}
			if _, has := raw["unionid"]; has != tt.unionID || (tt.unionID && a.UnionID == "") {
				t.Fatalf("unionid in %s, want present: %v", w.Body, tt.unionID)
			}
			if s.up.called != 0 {
				t.Fatal("the login route reached the upstream")
			}
			if strings.Contains(w.Body.String(), "session_key") {
				t.Fatal("the answer mentions session_key")
			}
		})
	}
}

func TestLoginFailures(t *testing.T) {
	tests := []struct {
		name        string
		method      string
		contentType string
		body        string
		setup       func(*wechattest.Server)
		status      int
		code        string
		errcode     int
		retryAfter  bool
	}{
		{"no code", "POST", "application/json", `{}`, nil, 400, "invalid_request", 0, false},
		{"empty body", "POST", "", ``, nil, 400, "invalid_request", 0, false},
		{"code as a number", "POST", "application/json", `{"code":5}`, nil, 400, "invalid_request", 0, false},
		{"code with a space", "POST", "application/json", `{"code":"a b"}`, nil, 400, "invalid_request", 0, false},
		{"unknown appid", "POST", "application/json", `{"code":"c","appid":"wxnope"}`, nil, 400, "invalid_request", 0, false},
		{"multipart", "POST", "multipart/form-data; boundary=x", "--x\r\n\r\n--x--", nil, 400, "invalid_request", 0, false},
		{"GET", "GET", "", ``, nil, 405, "invalid_request", 0, false},
		{"200 KB body", "POST", "application/json", `{"code":"` + strings.Repeat("a", 200_000) + `"}`, nil, 413, "payload_too_large", 0, false},
		{"40029", "POST", "application/json", `{"code":"errcode-40029"}`, nil, 401, "invalid_code", 40029, false},
		{"40163", "POST", "application/json", `{"code":"errcode-40163"}`, nil, 401, "invalid_code", 40163, false},
		{"40226", "POST", "application/json", `{"code":"errcode-40226"}`, nil, 403, "user_blocked", 40226, false},
		{"45011", "POST", "application/json", `{"code":"errcode-45011"}`, nil, 429, "rate_limited", 45011, true},
		{"-1", "POST", "application/json", `{"code":"errcode--1"}`, nil, 503, "wechat_unavailable", -1, true},
		{"40125", "POST", "application/json", `{"code":"errcode-40125"}`, nil, 500, "config_error", 40125, false},
		{"HTML 502", "POST", "application/json", `{"code":"c"}`, func(f *wechattest.Server) {
			f.FailNextHTTP(wechattest.PathCode2Session, 502, "<html>Bad Gateway</html>")
		}, 503, "wechat_unavailable", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSite(t, &Handler{}, wechattest.Options{AutoCodes: true})
			if tt.setup != nil {
				tt.setup(s.fake)
			}
			w := s.serve(tt.method, "/wx/login", tt.contentType, tt.body, nil)
			if w.Code != tt.status {
				t.Fatalf("status %d %s, want %d", w.Code, w.Body, tt.status)
			}
			b := decodeError(t, w)
			if b.Error != tt.code || b.WeChatErrcode != tt.errcode {
				t.Fatalf("answer %s, want %s with wechat_errcode %d", w.Body, tt.code, tt.errcode)
			}
			if (w.Header().Get("Retry-After") != "") != tt.retryAfter {
				t.Fatalf("Retry-After %q", w.Header().Get("Retry-After"))
			}
		})
	}
}

func TestLoginReusedCodeIsInvalidCode(t *testing.T) {
	s := newSite(t, &Handler{}, wechattest.Options{})
	s.fake.AddCode(siteAppID, "once", wechattest.User{OpenID: "oOnce"})
	s.login("once")
	w := s.serve(http.MethodPost, "/wx/login", "application/json", `{"code":"once"}`, nil)
	if w.Code != 401 || decodeError(t, w).WeChatErrcode != 40163 {
		t.Fatalf("%d %s, want 401 invalid_code 40163", w.Code, w.Body)
	}
}

func TestProxiedRequestCarriesVerifiedIdentity(t *testing.T) {
	s := newSite(t, &Handler{}, wechattest.Options{AutoCodes: true, UnionID: true})
	a := s.login("c1")
	hdr := bearer(a.Token)
	hdr["X-Wx-Openid"] = []string{"oEvil"}
	hdr["x-wx-unionid"] = []string{"uEvil"}
	hdr["X_WX_OPENID"] = []string{"oEvil"}
	hdr["X-Wx-Source"] = []string{"evil"}
	hdr["X-Request-Id"] = []string{"req-1"}
	w := s.serve(http.MethodGet, "/api/orders?x=1", "", "", hdr)
	if w.Code != http.StatusTeapot || s.up.called != 1 {
		t.Fatalf("%d %s; upstream called %d times", w.Code, w.Body, s.up.called)
	}
	got := s.up.header
	want := map[string][]string{
		"X-Wx-Openid":  {a.OpenID},
		"X-Wx-Appid":   {siteAppID},
		"X-Wx-Unionid": {a.UnionID},
		"X-Wx-Source":  {"wx_client"},
		"X-Request-Id": {"req-1"},
	}
	for k, v := range want {
		if strings.Join(got[k], ",") != strings.Join(v, ",") {
			t.Errorf("upstream %s = %q, want %q", k, got[k], v)
		}
	}
	for _, k := range []string{"Authorization", "x-wx-unionid", "X_WX_OPENID"} {
		if _, ok := got[k]; ok {
			t.Errorf("upstream received %s: %q", k, got[k])
		}
	}
	if s.up.repl["http.auth.user.id"] != a.OpenID || s.up.repl["http.auth.user.unionid"] != a.UnionID || s.up.repl["http.auth.user.appid"] != siteAppID {
		t.Errorf("placeholders %v", s.up.repl)
	}
}

func TestProxiedRequestWithoutValidTokenIs401(t *testing.T) {
	s := newSite(t, &Handler{}, wechattest.Options{AutoCodes: true})
	a := s.login("c1")
	tests := []struct {
		name      string
		target    string
		hdr       http.Header
		code      string
		challenge string
	}{
		{"no token", "/api", nil, "unauthorized", `Bearer realm="wechat_auth"`},
		{"token only in the query", "/api?access_token=" + url.QueryEscape(a.Token), nil, "unauthorized", `Bearer realm="wechat_auth"`},
		{"token in a cookie", "/api", http.Header{"Cookie": {"token=" + a.Token}}, "unauthorized", `Bearer realm="wechat_auth"`},
		{"Basic auth", "/api", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, "unauthorized", `Bearer realm="wechat_auth"`},
		{"cut token", "/api", bearer(a.Token[:len(a.Token)-3]), "invalid_token", `Bearer realm="wechat_auth", error="invalid_token"`},
		{"garbage token", "/api", bearer("garbage"), "invalid_token", `Bearer realm="wechat_auth", error="invalid_token"`},
		{"spoofed identity without token", "/api", http.Header{"X-Wx-Openid": {a.OpenID}}, "unauthorized", `Bearer realm="wechat_auth"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.up.called = 0
			w := s.serve(http.MethodGet, tt.target, "", "", tt.hdr)
			if w.Code != 401 || decodeError(t, w).Error != tt.code {
				t.Fatalf("%d %s, want 401 %s", w.Code, w.Body, tt.code)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tt.challenge {
				t.Fatalf("WWW-Authenticate %q, want %q", got, tt.challenge)
			}
			if s.up.called != 0 {
				t.Fatal("the upstream was called")
			}
		})
	}
}

func TestOptionalPassesAnonymousRequestsWithoutIdentity(t *testing.T) {
	s := newSite(t, &Handler{Optional: true}, wechattest.Options{AutoCodes: true})
	a := s.login("c1")
	tests := []struct {
		name     string
		hdr      http.Header
		identity bool
	}{
		{"no token", http.Header{"X-Wx-Openid": {"oEvil"}, "X_wx_appid": {"wxEvil"}}, false},
		{"invalid token", http.Header{"Authorization": {"Bearer garbage"}, "X-Wx-Openid": {"oEvil"}}, false},
		{"valid token", bearer(a.Token), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.up.called = 0
			w := s.serve(http.MethodGet, "/api", "", "", tt.hdr)
			if w.Code != http.StatusTeapot || s.up.called != 1 {
				t.Fatalf("%d %s; upstream called %d times", w.Code, w.Body, s.up.called)
			}
			got := s.up.header
			if tt.identity {
				if got.Get("X-Wx-Openid") != a.OpenID {
					t.Fatalf("X-Wx-Openid %q, want %q", got.Get("X-Wx-Openid"), a.OpenID)
				}
			} else {
				for k := range got {
					if idheader.HasPrefix(k, "x-wx-") {
						t.Fatalf("anonymous request reached the upstream with %s: %q", k, got[k])
					}
				}
				if s.up.repl["http.auth.user.id"] != "" {
					t.Fatalf("placeholder set: %v", s.up.repl)
				}
			}
			if _, ok := got["Authorization"]; ok {
				t.Fatalf("Authorization reached the upstream: %q", got["Authorization"])
			}
		})
	}
}

func TestCustomIdentityHeaderNames(t *testing.T) {
	s := newSite(t, &Handler{HeaderOpenID: "X-User", HeaderAppID: "x-app", HeaderUnionID: "X-Union"}, wechattest.Options{AutoCodes: true, UnionID: true})
	a := s.login("c1")
	hdr := bearer(a.Token)
	hdr["x_user"] = []string{"oEvil"} // the client's own spelling, as sent

	hdr["X-User"] = []string{"oEvil"}
	s.serve(http.MethodGet, "/api", "", "", hdr)
	got := s.up.header
	if strings.Join(got["X-User"], ",") != a.OpenID || got.Get("X-App") != siteAppID || got.Get("X-Union") != a.UnionID {
		t.Fatalf("upstream headers %v", got)
	}
	//lint:ignore SA1008 the client's own spelling: an upstream would see it as sent
	if _, ok := got["x_user"]; ok {
		t.Fatal("a client-sent x_user reached the upstream")
	}
	if got.Get("X-Wx-Openid") != "" {
		t.Fatal("the default header was set although another name is configured")
	}
}

func TestRefreshAndLogout(t *testing.T) {
	s := newSite(t, &Handler{}, wechattest.Options{AutoCodes: true})
	a := s.login("c1")

	w := s.serve(http.MethodPost, "/wx/refresh", "", "", bearer(a.Token))
	if w.Code != http.StatusOK {
		t.Fatalf("refresh: %d %s", w.Code, w.Body)
	}
	var r loginAnswer
	json.Unmarshal(w.Body.Bytes(), &r)
	if r.Token == "" || r.OpenID != a.OpenID || r.TokenType != "Bearer" {
		t.Fatalf("refresh answer %s", w.Body)
	}
	for _, tok := range []string{a.Token, r.Token} {
		if w := s.serve(http.MethodGet, "/api", "", "", bearer(tok)); w.Code != http.StatusTeapot {
			t.Fatalf("token before logout: %d %s", w.Code, w.Body)
		}
	}
	// Another user's session is not touched by this logout.
	other := s.login("c2")

	w = s.serve(http.MethodPost, "/wx/logout", "", "", bearer(r.Token))
	if w.Code != http.StatusNoContent || w.Body.Len() != 0 {
		t.Fatalf("logout: %d %s", w.Code, w.Body)
	}
	for _, tok := range []string{a.Token, r.Token} {
		if w := s.serve(http.MethodGet, "/api", "", "", bearer(tok)); w.Code != 401 || decodeError(t, w).Error != "invalid_token" {
			t.Fatalf("token after logout: %d %s", w.Code, w.Body)
		}
		if w := s.serve(http.MethodPost, "/wx/refresh", "", "", bearer(tok)); w.Code != 401 {
			t.Fatalf("refresh after logout: %d %s", w.Code, w.Body)
		}
	}
	if w := s.serve(http.MethodGet, "/api", "", "", bearer(other.Token)); w.Code != http.StatusTeapot {
		t.Fatalf("another session after this logout: %d %s", w.Code, w.Body)
	}
	if w := s.serve(http.MethodPost, "/wx/logout", "", "", nil); w.Code != 401 {
		t.Fatalf("logout without token: %d", w.Code)
	}
}

func TestUserinfoDecryptsWeChatsPublishedVector(t *testing.T) {
	v := wechattest.UserInfoVector
	s := newSite(t, &Handler{Apps: []App{{AppID: v.AppID, AppSecret: siteSecret}}}, wechattest.Options{AutoCodes: true})
	s.fake.AddCode(v.AppID, "vector-code", wechattest.User{OpenID: v.OpenID, UnionID: v.UnionID, SessionKey: v.SessionKey})
	a := s.login("vector-code")
	if a.OpenID != v.OpenID || a.UnionID != v.UnionID {
		t.Fatalf("login %+v", a)
	}
	stranger := s.login("someone-else")

	tests := []struct {
		name        string
		tok         string
		contentType string
		body        string
		status      int
		code        string
	}{
		{"JSON", a.Token, "application/json", `{"encryptedData":"` + v.EncryptedData + `","iv":"` + v.IV + `"}`, 200, ""},
		{"form with '+' unescaped", a.Token, "application/x-www-form-urlencoded", "encryptedData=" + v.EncryptedData + "&iv=" + v.IV, 200, ""},
		{"form escaped", a.Token, "application/x-www-form-urlencoded", url.Values{"encryptedData": {v.EncryptedData}, "iv": {v.IV}}.Encode(), 200, ""},
		{"without token", "", "application/json", `{"encryptedData":"` + v.EncryptedData + `","iv":"` + v.IV + `"}`, 401, "unauthorized"},
		{"another user's session", stranger.Token, "application/json", `{"encryptedData":"` + v.EncryptedData + `","iv":"` + v.IV + `"}`, 400, "decrypt_failed"},
		{"short iv", a.Token, "application/json", `{"encryptedData":"` + v.EncryptedData + `","iv":"r7BXXKkLb8qrSNn05n0q"}`, 400, "decrypt_failed"},
		{"partial block", a.Token, "application/json", `{"encryptedData":"` + v.EncryptedData[:len(v.EncryptedData)-8] + `","iv":"` + v.IV + `"}`, 400, "decrypt_failed"},
		{"bad base64", a.Token, "application/json", `{"encryptedData":"***","iv":"` + v.IV + `"}`, 400, "invalid_request"},
		{"missing iv", a.Token, "application/json", `{"encryptedData":"` + v.EncryptedData + `"}`, 400, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr http.Header
			if tt.tok != "" {
				hdr = bearer(tt.tok)
			}
			w := s.serve(http.MethodPost, "/wx/userinfo", tt.contentType, tt.body, hdr)
			if w.Code != tt.status {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tt.status)
			}
			if tt.status == 200 {
				if w.Body.String() != v.Plaintext {
					t.Fatalf("body %s, want WeChat's plaintext", w.Body)
				}
				return
			}
			if b := decodeError(t, w); b.Error != tt.code {
				t.Fatalf("error %s, want %s", b.Error, tt.code)
			}
		})
	}
}

func TestSandboxLoginEncryptAndDecrypt(t *testing.T) {
	s := newSite(t, &Handler{Sandbox: true}, wechattest.Options{})
	a := s.login("demo")
	if again := s.login("demo"); again.OpenID != a.OpenID {
		t.Fatalf("same code, openids %q and %q", a.OpenID, again.OpenID)
	}
	if other := s.login("other"); other.OpenID == a.OpenID {
		t.Fatal("different codes, same openid")
	}

	w := s.serve(http.MethodPost, "/wx/sandbox/encrypt", "application/json", `{"nickName":"Sandy","gender":0}`, bearer(a.Token))
	if w.Code != 200 {
		t.Fatalf("encrypt: %d %s", w.Code, w.Body)
	}
	var enc map[string]string
	json.Unmarshal(w.Body.Bytes(), &enc)
	if enc["rawData"] != `{"nickName":"Sandy","gender":0}` || enc["signature"] == "" {
		t.Fatalf("encrypt answer %s", w.Body)
	}
	body, _ := json.Marshal(enc)
	w = s.serve(http.MethodPost, "/wx/userinfo", "application/json", string(body), bearer(a.Token))
	if w.Code != 200 {
		t.Fatalf("userinfo: %d %s", w.Code, w.Body)
	}
	var got struct {
		NickName  string `json:"nickName"`
		OpenID    string `json:"openId"`
		Watermark struct {
			AppID string `json:"appid"`
		} `json:"watermark"`
	}
	json.Unmarshal(w.Body.Bytes(), &got)
	if got.NickName != "Sandy" || got.OpenID != a.OpenID || got.Watermark.AppID != sandboxAppID {
		t.Fatalf("decrypted %s", w.Body)
	}

	// A production site with the same signing key refuses sandbox tokens.
	prod := newSite(t, &Handler{Apps: []App{{AppID: sandboxAppID, AppSecret: siteSecret}}}, wechattest.Options{AutoCodes: true})
	if w := prod.serve(http.MethodGet, "/api", "", "", bearer(a.Token)); w.Code != 401 || decodeError(t, w).Error != "invalid_token" {
		t.Fatalf("production site with a sandbox token: %d %s", w.Code, w.Body)
	}
	// And a production site has no sandbox route.
	if w := prod.serve(http.MethodPost, "/wx/sandbox/encrypt", "application/json", `{}`, bearer(prod.login("c").Token)); w.Code != http.StatusTeapot {
		t.Fatalf("/wx/sandbox/encrypt outside sandbox: %d %s, want it passed on", w.Code, w.Body)
	}
}

func TestRoutePrefixMovesTheRoutes(t *testing.T) {
	s := newSite(t, &Handler{RoutePrefix: "/auth/wechat/"}, wechattest.Options{AutoCodes: true})
	if w := s.serve(http.MethodPost, "/auth/wechat/login", "application/json", `{"code":"c"}`, nil); w.Code != 200 {
		t.Fatalf("login under the prefix: %d %s", w.Code, w.Body)
	}
	if w := s.serve(http.MethodPost, "/wx/login", "application/json", `{"code":"c"}`, nil); w.Code != 401 || decodeError(t, w).Error != "unauthorized" {
		t.Fatalf("/wx/login with another prefix: %d %s, want a protected path", w.Code, w.Body)
	}
}

func TestRootRoutePrefixServesRoutesAtTheTop(t *testing.T) {
	s := newSite(t, &Handler{RoutePrefix: "/"}, wechattest.Options{AutoCodes: true})
	if w := s.serve(http.MethodPost, "/login", "application/json", `{"code":"c"}`, nil); w.Code != 200 {
		t.Fatalf("route_prefix /: POST /login answered %d %s", w.Code, w.Body)
	}
}

func TestLogoutOutlivesTokensIssuedUnderALongerTTL(t *testing.T) {
	long := newSite(t, &Handler{TokenTTL: caddy.Duration(24 * time.Hour)}, wechattest.Options{AutoCodes: true})
	tok := long.login("c").Token
	// The same store after a reload that shortened token_ttl: the logout
	// must hold until the old token's own expiry, not now + 1h.
	long.h.TokenTTL = caddy.Duration(time.Hour)
	if w := long.serve(http.MethodPost, "/wx/logout", "", "", bearer(tok)); w.Code != http.StatusNoContent {
		t.Fatalf("logout: %d %s", w.Code, w.Body)
	}
	id, err := long.h.tokens.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if !long.h.store.Revoked(id.SID, time.Now().Add(2*time.Hour)) {
		t.Fatal("2h after the logout the 24h token of the session is no longer revoked")
	}
}

func TestLogsNeverContainSecrets(t *testing.T) {
	v := wechattest.UserInfoVector
	s := newSite(t, &Handler{Apps: []App{{AppID: v.AppID, AppSecret: siteSecret}}}, wechattest.Options{AutoCodes: true})
	core, logs := observer.New(zapcore.DebugLevel)
	s.h.logger = zap.New(core)

	s.fake.AddCode(v.AppID, "vector-code-secret-1", wechattest.User{OpenID: v.OpenID, SessionKey: v.SessionKey})
	a := s.login("vector-code-secret-1")
	secrets := []string{siteSecret, testSigningKey, v.SessionKey, "vector-code-secret-1", a.Token, v.EncryptedData[:40], v.IV}

	userinfo := `{"encryptedData":"` + v.EncryptedData + `","iv":"` + v.IV + `"}`
	s.serve(http.MethodPost, "/wx/userinfo", "application/json", userinfo, bearer(a.Token))
	s.serve(http.MethodPost, "/wx/userinfo", "application/json", `{"encryptedData":"`+v.EncryptedData[:64]+`","iv":"`+v.IV+`"}`, bearer(a.Token))
	s.serve(http.MethodGet, "/api", "", "", bearer(a.Token+"x"))
	for _, code := range []string{"errcode-40125", "errcode-40125", "errcode-40164", "errcode--1", "errcode-40163", "errcode-45011"} {
		s.serve(http.MethodPost, "/wx/login", "application/json", `{"code":"`+code+`"}`, nil)
		secrets = append(secrets, code)
	}
	s.fake.FailNextHTTP(wechattest.PathCode2Session, 502, "<html>gateway</html>")
	s.serve(http.MethodPost, "/wx/login", "application/json", `{"code":"c-after-502"}`, nil)
	s.serve(http.MethodPost, "/wx/logout", "", "", bearer(a.Token))
	secrets = append(secrets, "c-after-502")

	if logs.Len() == 0 {
		t.Fatal("nothing was logged; the test would prove nothing")
	}
	errorsLogged := 0
	for _, e := range logs.All() {
		text := e.Message
		for k, val := range e.ContextMap() {
			text += " " + k + "=" + toString(val)
		}
		for _, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("log entry %q contains %q", text, secret)
			}
		}
		if e.Level == zapcore.ErrorLevel {
			errorsLogged++
		}
	}
	if errorsLogged != 2 {
		t.Errorf("%d ERROR entries, want 2: each WeChat configuration error once (40125, 40164)", errorsLogged)
	}
}

func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case error:
		return v.Error()
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// TestIdentityPrefixFoldsEveryByteAsTheFolder checks the byte-by-byte test
// of the x-wx- prefix against folding the name: every byte value at each of
// the five positions, the other four spelled as a client would.
func TestIdentityPrefixFoldsEveryByteAsTheFolder(t *testing.T) {
	for _, base := range []string{"X-Wx-Openid", "x_wx_openid", "X.WX.OPENID"} {
		for pos := range 5 {
			for c := range 256 {
				name := []byte(base)
				name[pos] = byte(c)
				want := idheader.HasPrefix(string(name), "x-wx-")
				if got := idheader.HasIdentityPrefix(string(name)); got != want {
					t.Errorf("%q: idheader.HasIdentityPrefix = %v, folding says %v", name, got, want)
				}
			}
		}
	}
	for _, short := range []string{"", "X", "X-Wx", "x-wx"} {
		if idheader.HasIdentityPrefix(short) {
			t.Errorf("%q counted as under x-wx-", short)
		}
	}
}

// A public pattern admits only plain paths: every spelling that an
// upstream (Tomcat, Jetty, Spring strip ";params" and resolve ".." after;
// others cut at NUL, LF, '#', '?') may read as a protected path is judged
// as a protected path.
func TestPublicPathsAdmitOnlyPlainPaths(t *testing.T) {
	s := newSite(t, &Handler{PublicPaths: caddyhttp.MatchPath{"/health", "/static/*", "*.png"}}, wechattest.Options{AutoCodes: true})
	for _, target := range []string{
		"/health", "/HEALTH", "/static/app.js", "/static/css/site.css", "/static/a.b.c.js",
		"/img/a.png", "/img/a%20b.png", "/static/...js", "/static/.well-known.js", "/static/", "/static//app.js",
	} {
		t.Run(target+" is public", func(t *testing.T) {
			s.up.called = 0
			if w := s.serve(http.MethodGet, target, "", "", nil); w.Code != http.StatusTeapot || s.up.called != 1 {
				t.Fatalf("%d %s, want the upstream's answer", w.Code, w.Body)
			}
		})
	}
	for _, target := range []string{
		"/static/..;/api/orders", "/static/..;/..;/api/orders", "/static/%2e%2e;/api/orders",
		"/static/%2E%2E;/api/orders", "/static/.%2e;/api/orders", "/static/..%3b/api/orders",
		"/static/..%3B/api/orders", "/static/.;/api/orders", "/static/;/../api/orders",
		"/static/../api/orders", "/static/%2e%2e/api/orders", "/static/%2e%2e%2fapi/orders",
		"/static/./app.js", "/static/..", "/static/.", "/static/...", "/static%2f..%2fapi/orders",
		"/static/%252e%252e/api/orders", "/static/..%5capi/orders", "/static/..\\api/orders",
		"/api/orders;.png", "/api/orders%3b.png", "/api/orders%3B.png", "/api/orders%00.png",
		"/api/orders%0a.png", "/api/orders%0d.png", "/api/orders%09.png", "/api/orders%7f.png",
		"/api/orders%23.png", "/api/orders%3f.png", "/api/orders%5c.png", "/api/orders%2f.png",
		"/health;x", "/health%00", "/health/.", "/api/orders/..;/img/a.png",
	} {
		t.Run(target+" is protected", func(t *testing.T) {
			s.up.called = 0
			w := s.serve(http.MethodGet, target, "", "", nil)
			if w.Code != http.StatusUnauthorized || decodeError(t, w).Error != "unauthorized" || s.up.called != 0 {
				t.Fatalf("%d %s (upstream called %d times), want 401 unauthorized", w.Code, w.Body, s.up.called)
			}
		})
	}
}

// A token sent where it is never read (the query string, another scheme
// than Bearer) is answered 401 unauthorized with a message that says how to
// send it; a request without any token is told to log in.
func TestMisplacedTokenIs401SayingHowToSendIt(t *testing.T) {
	s := newSite(t, &Handler{}, wechattest.Options{AutoCodes: true})
	a := s.login("c1")
	const howTo = "Authorization: Bearer <token>"
	tests := []struct {
		name   string
		target string
		hdr    http.Header
		howTo  bool
	}{
		{"?token=", "/api?token=" + url.QueryEscape(a.Token), nil, true},
		{"?access_token=", "/api?x=1&access_token=" + url.QueryEscape(a.Token), nil, true},
		{"?Access_Token=", "/api?Access_Token=" + url.QueryEscape(a.Token), nil, true},
		{"raw JWT", "/api", http.Header{"Authorization": {a.Token}}, true},
		{"Token scheme", "/api", http.Header{"Authorization": {"Token " + a.Token}}, true},
		{"JWT scheme", "/api", http.Header{"Authorization": {"JWT " + a.Token}}, true},
		{"Bearer without a space", "/api", http.Header{"Authorization": {"Bearer:" + a.Token}}, true},
		{"Bearer without a token", "/api", http.Header{"Authorization": {"Bearer "}}, true},
		{"no token", "/api", nil, false},
		{"Basic only", "/api", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, false},
		{"empty ?token=", "/api?token=", nil, false},
		{"token in a cookie", "/api", http.Header{"Cookie": {"token=" + a.Token}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.up.called = 0
			w := s.serve(http.MethodGet, tt.target, "", "", tt.hdr)
			e := decodeError(t, w)
			if w.Code != http.StatusUnauthorized || e.Error != "unauthorized" || s.up.called != 0 {
				t.Fatalf("%d %s (upstream called %d times), want 401 unauthorized", w.Code, w.Body, s.up.called)
			}
			if got := strings.Contains(e.Message, howTo); got != tt.howTo {
				t.Errorf("message %q: names %q %v, want %v", e.Message, howTo, got, tt.howTo)
			}
			if tt.howTo && strings.Contains(e.Message, "log in") {
				t.Errorf("message %q tells a client that holds a token to log in", e.Message)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != `Bearer realm="wechat_auth"` {
				t.Errorf("WWW-Authenticate %q", got)
			}
		})
	}
}
