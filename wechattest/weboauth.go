package wechattest

import (
	"crypto/rand"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The web authorization of WeChat: the pages a browser is sent to
// (connect/oauth2/authorize inside WeChat, connect/qrconnect on a PC) and
// the server calls that turn their code into a user. The fake's pages need
// no WeChat account: they redirect straight back with a code, so a real
// browser runs the whole dance offline.

// Web OAuth paths the fake serves. The authorize and qrconnect pages live
// on open.weixin.qq.com, the API calls on api.weixin.qq.com; the fake
// serves all four on one host.
const (
	PathOAuthAuthorize   = "/connect/oauth2/authorize"
	PathQRConnect        = "/connect/qrconnect"
	PathOAuthAccessToken = "/sns/oauth2/access_token"
	PathSNSUserInfo      = "/sns/userinfo"
)

// ErrAPIUnauthorized is WeChat's answer to sns/userinfo with a token of
// scope snsapi_base.
const ErrAPIUnauthorized = 48001

// DefaultWebUser is the user an authorization page picks without ?user=.
const DefaultWebUser = "user"

// OAuthTokenTTL is the lifetime of a web OAuth access token.
const OAuthTokenTTL = 2 * time.Hour

// maxWebEntries bounds the web codes and tokens kept, and maxAuthorizeLog
// the authorization requests recorded: a sandbox may face anyone.
const (
	maxWebEntries   = 10000
	maxAuthorizeLog = 100
)

func init() {
	for _, p := range []string{PathOAuthAuthorize, PathQRConnect, PathOAuthAccessToken, PathSNSUserInfo} {
		servedPaths[p] = true
	}
}

// AuthorizeRequest is what an authorization page was asked, as recorded
// for tests.
type AuthorizeRequest struct {
	Path         string // PathOAuthAuthorize or PathQRConnect
	AppID        string
	RedirectURI  string
	ResponseType string
	Scope        string
	State        string
	User         string // the user who authorized; "" when declined or refused
	Declined     bool   // ?decline=1: sent back without a code
	Error        string // why the page refused the request; "" when it redirected back
}

// webState is the fake's memory of web OAuth, guarded by Server.mu; its
// zero value is ready.
type webState struct {
	codes      map[string]*webCode  // by code
	tokens     map[string]*webToken // by access token
	authorized []AuthorizeRequest
	snapshot   bool
	domains    map[string]string // appid → the one host its redirect_uri may name
	noUnion    map[string]bool   // appids not bound to an Open Platform account
	strangers  map[string]bool   // Official Accounts whose users do not follow them
}

type webCode struct {
	appid, user, scope string
	snapshot           bool
	issued             time.Time
	used               bool
}

type webToken struct {
	appid, user, scope string
	issued             time.Time
}

// WebOpenID is the openid of web user name for appid: the same user has
// another openid in every app.
func WebOpenID(appid, name string) string { return derivedID("o", appid, name) }

// WebUnionID is the unionid of web user name, the same in every app bound
// to the Open Platform account.
func WebUnionID(name string) string { return derivedID("u", "", "web\x00"+name) }

// AuthorizeRequests returns the authorization page requests seen (the last
// 100), oldest first.
func (s *Server) AuthorizeRequests() []AuthorizeRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]AuthorizeRequest(nil), s.web.authorized...)
}

// SetSnapshotUsers makes the codes issued while on answer
// is_snapshotuser: 1, as for a page viewed in WeChat's "snapshot" mode.
// An authorization page asked with ?snapshot=1 issues one such code.
func (s *Server) SetSnapshotUsers(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.web.snapshot = on
}

// SetOAuthDomain sets the one host (the console's 网页授权域名) that appid's
// redirect_uri may name; any host when never set.
func (s *Server) SetOAuthDomain(appid, host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.web.domains == nil {
		s.web.domains = make(map[string]string)
	}
	s.web.domains[appid] = host
}

// SetWebUnionID says whether appid is bound to the Open Platform account,
// so that its web logins answer a unionid (the default) or none.
func (s *Server) SetWebUnionID(appid string, bound bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	setAppFlag(&s.web.noUnion, appid, !bound)
}

// SetWebFollowers says whether the users of appid, an Official Account,
// follow it (the default). As WeChat's, the fake's code exchange leaves
// out the unionid of a user who does not follow the account: it comes
// only from sns/userinfo, which a snsapi_userinfo token may call. A
// website app's QR login (snsapi_login) answers it either way.
func (s *Server) SetWebFollowers(appid string, follow bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	setAppFlag(&s.web.strangers, appid, !follow)
}

// setAppFlag sets appid's flag in *m, making the map when needed.
func setAppFlag(m *map[string]bool, appid string, on bool) {
	if *m == nil {
		*m = make(map[string]bool)
	}
	(*m)[appid] = on
}

// AddWebCode registers a web authorization code of appid for user name
// with scope, as the pages issue them.
func (s *Server) AddWebCode(appid, code, name, scope string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addWebCodeLocked(code, &webCode{appid: appid, user: name, scope: scope, snapshot: s.web.snapshot, issued: s.opts.Now()})
}

func (s *Server) addWebCodeLocked(code string, c *webCode) {
	if s.web.codes == nil {
		s.web.codes = make(map[string]*webCode)
	}
	if len(s.web.codes) >= maxWebEntries {
		now := s.opts.Now()
		for k, old := range s.web.codes {
			if now.Sub(old.issued) > CodeTTL || old.used || len(s.web.codes) >= maxWebEntries {
				delete(s.web.codes, k)
			}
		}
	}
	s.web.codes[code] = c
}

func (s *Server) serveWeb(w http.ResponseWriter, r *http.Request) bool {
	switch r.URL.Path {
	case PathOAuthAuthorize, PathQRConnect:
		s.authorizePage(w, r)
	case PathOAuthAccessToken:
		s.oauthAccessToken(w, r)
	case PathSNSUserInfo:
		s.snsUserInfo(w, r)
	default:
		return false
	}
	return true
}

// authorizePage plays the user who opens the page and agrees (or, with
// ?decline=1, refuses): it checks the request as WeChat does and redirects
// back to redirect_uri with a code and the state.
func (s *Server) authorizePage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := AuthorizeRequest{
		Path:         r.URL.Path,
		AppID:        q.Get("appid"),
		RedirectURI:  q.Get("redirect_uri"),
		ResponseType: q.Get("response_type"),
		Scope:        q.Get("scope"),
		State:        q.Get("state"),
	}
	name := q.Get("user")
	if name == "" {
		name = DefaultWebUser
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	back, problem := s.checkAuthorizeLocked(r, &req, name)
	if problem == "" && q.Get("decline") == "1" {
		req.Declined = true
	} else if problem == "" {
		req.User = name
	}
	req.Error = problem
	if len(s.web.authorized) >= maxAuthorizeLog {
		s.web.authorized = append(s.web.authorized[:0], s.web.authorized[1:]...)
	}
	s.web.authorized = append(s.web.authorized, req)
	if problem != "" {
		// WeChat shows an error page and never redirects a bad request.
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "<!doctype html><title>WeChat authorization error</title><h1>%s</h1>\n", html.EscapeString(problem))
		return
	}
	qs := "state=" + url.QueryEscape(req.State)
	if !req.Declined {
		code := newWebCode()
		s.addWebCodeLocked(code, &webCode{
			appid: req.AppID, user: name, scope: req.Scope,
			snapshot: s.web.snapshot || q.Get("snapshot") == "1", issued: s.opts.Now(),
		})
		qs = "code=" + code + "&" + qs
	}
	if back.RawQuery != "" {
		back.RawQuery += "&" + qs
	} else {
		back.RawQuery = qs
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// checkAuthorizeLocked returns where to send the browser back, or why the
// page refuses the request.
func (s *Server) checkAuthorizeLocked(r *http.Request, req *AuthorizeRequest, name string) (*url.URL, string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return nil, "method not allowed"
	}
	if req.AppID == "" || s.apps[req.AppID] == nil {
		return nil, "appid invalid"
	}
	if req.ResponseType != "code" {
		return nil, "response_type must be code"
	}
	switch {
	case req.Path == PathQRConnect && req.Scope != "snsapi_login":
		return nil, "scope must be snsapi_login"
	case req.Path == PathOAuthAuthorize && req.Scope != "snsapi_base" && req.Scope != "snsapi_userinfo":
		return nil, "scope must be snsapi_base or snsapi_userinfo"
	}
	if !validState(req.State) {
		return nil, "state must be at most 128 characters of a-z, A-Z, 0-9"
	}
	if !validWebUser(name) {
		return nil, "user must be 1 to 32 characters of a-z, A-Z, 0-9, - and _"
	}
	back, err := url.Parse(req.RedirectURI)
	switch {
	case err != nil, back.Scheme != "http" && back.Scheme != "https", back.Host == "", back.User != nil,
		back.Fragment != "", strings.Contains(req.RedirectURI, "#"):
		return nil, "redirect_uri invalid (10003)"
	}
	if host, ok := s.web.domains[req.AppID]; ok && !strings.EqualFold(back.Hostname(), host) {
		return nil, "redirect_uri domain differs from the configured one (10003)"
	}
	return back, ""
}

// validState accepts what WeChat carries back: at most 128 characters of
// [A-Za-z0-9] (none is allowed).
func validState(s string) bool {
	if len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func validWebUser(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// newWebCode makes a code shaped as WeChat's: 32 characters.
func newWebCode() string {
	const chars = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	var b [32]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return string(b[:])
}

// oauthAccessToken answers sns/oauth2/access_token: codes are single use
// (unless ReusableCodes), live five minutes, and belong to the app whose
// page issued them.
func (s *Server) oauthAccessToken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	appid, code, ok := s.codeRequest(w, r.URL.Query(), "code")
	if !ok {
		return
	}
	c := s.web.codes[code]
	switch {
	case c == nil, c.appid != appid, s.opts.Now().Sub(c.issued) > CodeTTL:
		writeErr(w, ErrInvalidCode)
		return
	case c.used && !s.opts.ReusableCodes:
		writeErr(w, ErrCodeUsed)
		return
	}
	c.used = true
	tok := newToken()
	if s.web.tokens == nil {
		s.web.tokens = make(map[string]*webToken)
	}
	if len(s.web.tokens) >= maxWebEntries {
		now := s.opts.Now()
		for k, old := range s.web.tokens {
			if now.Sub(old.issued) >= OAuthTokenTTL || len(s.web.tokens) >= maxWebEntries {
				delete(s.web.tokens, k)
			}
		}
	}
	s.web.tokens[tok] = &webToken{appid: appid, user: c.user, scope: c.scope, issued: s.opts.Now()}
	out := map[string]any{
		"access_token":  tok,
		"expires_in":    int(OAuthTokenTTL / time.Second),
		"refresh_token": newToken(),
		"openid":        WebOpenID(appid, c.user),
		"scope":         c.scope,
	}
	if c.snapshot {
		out["is_snapshotuser"] = 1
	}
	if !s.web.noUnion[appid] && (c.scope == "snsapi_login" || !s.web.strangers[appid]) {
		out["unionid"] = WebUnionID(c.user)
	}
	writeJSON(w, out)
}

// snsUserInfo answers sns/userinfo for a token of scope snsapi_userinfo or
// snsapi_login.
func (s *Server) snsUserInfo(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.web.tokens[q.Get("access_token")]
	switch {
	case t == nil:
		writeErr(w, ErrInvalidToken)
		return
	case s.opts.Now().Sub(t.issued) >= OAuthTokenTTL:
		writeErr(w, ErrTokenExpired)
		return
	case t.scope != "snsapi_userinfo" && t.scope != "snsapi_login":
		writeErr(w, ErrAPIUnauthorized)
		return
	case q.Get("openid") != WebOpenID(t.appid, t.user):
		writeErr(w, ErrInvalidOpenID)
		return
	}
	out := map[string]any{
		"openid":     WebOpenID(t.appid, t.user),
		"nickname":   "WeChat " + t.user,
		"sex":        0,
		"province":   "",
		"city":       "",
		"country":    "CN",
		"headimgurl": "",
		"privilege":  []string{},
	}
	if !s.web.noUnion[t.appid] {
		out["unionid"] = WebUnionID(t.user)
	}
	writeJSON(w, out)
}

// WebAccessTokens returns the web OAuth access tokens the fake has issued
// and still holds, so a test can check that none reached a browser, an
// upstream or a log.
func (s *Server) WebAccessTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.web.tokens))
	for tok := range s.web.tokens {
		out = append(out, tok)
	}
	return out
}
