package wechatauth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/caddy-wechat/wechatauth/internal/apierr"
	"github.com/caddy-wechat/wechatauth/internal/audit"
	"github.com/caddy-wechat/wechatauth/internal/metrics"
	"github.com/caddy-wechat/wechatauth/internal/platform"
	"github.com/caddy-wechat/wechatauth/internal/session"
	"github.com/caddy-wechat/wechatauth/internal/token"
	"github.com/caddy-wechat/wechatauth/wechat"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(APIGateway{})
	httpcaddyfile.RegisterHandlerDirective("wechat_api", parseGatewayCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("wechat_api", httpcaddyfile.Before, "basic_auth")
}

// defaultGatewayMaxBody is the largest request body the gateway forwards
// unless max_body says otherwise.
const defaultGatewayMaxBody = 10 << 20

// APIGateway forwards an upstream's calls to WeChat's server APIs with the
// app's access token added, as WeChat Cloud Hosting's open interface
// service does: the upstream needs neither the AppSecret nor a token cache
// of its own, and every instance of it shares the one stable token of this
// process. It also serves the APIs that need a user's session_key
// (checksession, resetusersessionkey, a virtual payment's user signature)
// with the key wechat_auth keeps, which never leaves the server.
//
// The gateway spends the app's quota and sends messages as the app: serve
// it only on a loopback or private address that only your upstreams reach.
// It answers every request it gets.
type APIGateway struct {
	// The mini programs served, as in wechat_auth. With several, a call
	// names its app with the from_appid query parameter or the X-WX-APPID
	// header.
	Apps []App `json:"apps,omitempty"`

	// WeChat's API root. Default: https://api.weixin.qq.com
	APIBase string `json:"api_base,omitempty"`

	// Use the process's in-process fake WeChat (the one wechat_auth's
	// sandbox uses) instead of the real one; no app secret may be given.
	Sandbox bool `json:"sandbox,omitempty"`

	// How long to wait for WeChat, token fetch and retries included.
	// Default: 5s
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// The session store the session-key services read, as in
	// wechat_auth: empty for the process's memory store, or the same
	// redis:// URL (then also the same signing_key) as the wechat_auth
	// that keeps the sessions.
	Store string `json:"store,omitempty"`

	// The Redis of the session store given by its parts (Sentinel,
	// Cluster), as in wechat_auth's store redis { … }.
	Redis *RedisConfig `json:"redis,omitempty"`

	// The signing key of the wechat_auth whose Redis sessions are read,
	// needed only with a Redis store; as in wechat_auth, a generated one
	// is read from Caddy's storage when empty.
	SigningKey string `json:"signing_key,omitempty"`

	// wechat_auth's earlier signing keys, as there: any of them finds the
	// Redis data key.
	PreviousSigningKeys []string `json:"previous_signing_keys,omitempty"`

	// The WeChat API paths forwarded, matched exactly (such as
	// /cgi-bin/message/subscribe/send); "*" forwards every path written
	// as WeChat's are (letters, digits, '_', '-', and '.' inside a
	// segment), others being answered 400 invalid_request. Paths not
	// listed are answered 403 api_not_allowed. /cgi-bin/token and
	// /cgi-bin/stable_token are never forwarded: the gateway never hands
	// out a token. The session-key services (/wxa/checksession,
	// /wxa/resetusersessionkey, /wechat_auth/user_signature) must be
	// listed too.
	Allow []string `json:"allow,omitempty"`

	// The largest request body forwarded, in bytes; larger ones are
	// answered 413. Default: 10 MiB
	MaxBody int64 `json:"max_body,omitempty"`

	logger   *zap.Logger
	audit    *zap.Logger
	sh       shared // the app, secret, key and store settings, provisioned as wechat_auth's
	wxConn   *platform.Conn
	inFlight *inFlight // calls being served: Cleanup waits for them
	wx       *wechat.Client
	allowAll bool
	allowed  map[string]bool
}

// CaddyModule returns the Caddy module information.
func (APIGateway) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.wechat_api",
		New: func() caddy.Module { return new(APIGateway) },
	}
}

// Provision resolves the apps' secrets the way wechat_auth does, takes
// the process's shared token caches and session store, and checks the
// allow list.
func (g *APIGateway) Provision(ctx caddy.Context) error {
	// First, so that a config refused below keeps the series on /metrics.
	if err := metrics.Init(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("wechat_api: metrics: %w", err)
	}
	g.logger = ctx.Logger()
	g.inFlight = new(inFlight)
	g.audit = newAuditLogger(ctx)
	if g.MaxBody == 0 {
		g.MaxBody = defaultGatewayMaxBody
	}
	if err := g.checkAllow(); err != nil {
		return err
	}
	// A gateway that names none of the shared settings uses the wechat
	// app's; the two never mix.
	app, err := loadApp(ctx)
	if err != nil {
		return err
	}
	own := g.ownShared()
	if own.hasLines() && !g.Sandbox {
		warnLiteralSecrets(g.logger, "wechat_api", sharedSecretFields(g.Apps, g.Store, g.Redis, g.SigningKey, g.PreviousSigningKeys)...)
	}
	sc, unused := app.forHandler(own)
	warnUnused(g.logger, "wechat_api", unused)
	g.Apps, g.APIBase, g.Sandbox, g.Timeout = sc.apps, sc.APIBase, sc.Sandbox, sc.Timeout
	g.Store, g.Redis, g.SigningKey, g.PreviousSigningKeys = sc.Store, sc.Redis, sc.SigningKey, sc.PreviousSigningKeys
	// The settings wechat_auth shares with the gateway are judged and
	// provisioned by the same code as there, errors naming wechat_api.
	sh := &g.sh
	*sh = shared{
		module: "wechat_api", logger: g.logger,
		apps: g.Apps, apiBase: g.APIBase, sandbox: g.Sandbox, timeout: g.Timeout,
		storeURL: g.Store, redis: g.Redis, signingKey: g.SigningKey, previousKeys: g.PreviousSigningKeys,
		tokenTTL:           caddy.Duration(defaultTokenTTL),
		configErrorsLogged: new(sync.Map),
	}
	if sh.timeout == 0 {
		sh.timeout = caddy.Duration(wechat.DefaultTimeout)
	}
	if sh.sandbox && len(sh.apps) == 0 {
		sh.apps = []App{{AppID: sandboxAppID}}
	}
	if err := sh.resolve(); err != nil {
		return err
	}
	if err := sh.check(); err != nil {
		return err
	}
	if store := strings.TrimSpace(caddy.NewReplacer().ReplaceKnown(sh.storeURL, "")); sh.redis != nil || (store != "" && store != "memory") {
		// Sessions in Redis are found through the signing keys, which
		// unwrap the data key that seals them.
		ring, err := sh.provisionKeys(ctx)
		if err != nil {
			return err
		}
		sh.tokens = token.New(nil, token.IssuerProduction, time.Duration(sh.tokenTTL), sh.secrets)
		sh.tokens.SetRing(ring)
	}
	if err := sh.provisionStore(ctx, app); err != nil {
		return err
	}
	conn, err := platform.Open(platform.Settings{Base: g.APIBase, Secrets: sh.secrets, Timeout: time.Duration(sh.timeout), Sandbox: g.Sandbox})
	if err != nil {
		return fmt.Errorf("wechat_api: WeChat client: %w", err)
	}
	g.wxConn, g.wx = conn, conn.Client
	if g.Sandbox {
		g.logger.Warn("wechat_api sandbox is on: calls go to a fake WeChat; never use this in production")
	}
	return nil
}

// ownShared returns the shared settings the gateway names itself.
func (g *APIGateway) ownShared() sharedConfig {
	return sharedConfig{
		apps: g.Apps, APIBase: g.APIBase, Sandbox: g.Sandbox, Timeout: g.Timeout, Store: g.Store,
		Redis: g.Redis, SigningKey: g.SigningKey, PreviousSigningKeys: g.PreviousSigningKeys,
	}
}

// tokenPaths are never forwarded, in any spelling.
var tokenPaths = map[string]bool{"/cgi-bin/token": true, "/cgi-bin/stable_token": true}

// isTokenPath reports whether p, cleaned and in lower case, is a token
// endpoint.
func isTokenPath(p string) bool {
	return tokenPaths[strings.ToLower(path.Clean("/"+p))]
}

// isTokenPathWithSuffix reports whether p is a token endpoint with more
// after it that some servers ignore: a suffix such as ".json" on its
// segment, or further segments, which a CGI server passes to the script
// as PATH_INFO (/cgi-bin/token/x runs /cgi-bin/token).
func isTokenPathWithSuffix(p string) bool {
	for end := 1; end <= len(p); end++ {
		if end < len(p) && p[end] != '/' {
			continue
		}
		head := p[:end]
		if end < len(p) && isTokenPath(head) {
			return true
		}
		i := strings.LastIndexByte(head, '/')
		if j := strings.IndexByte(head[i+1:], '.'); j > 0 && isTokenPath(head[:i+1+j]) {
			return true
		}
	}
	return false
}

// plainAPIPath reports whether p is written the way WeChat's API paths
// are: segments of letters, digits, '_', '-' and '.', none empty, none
// "." or "..", none ending in a dot. Anything else (';', a control
// character, NUL, a space, '#', '~', a backslash, "//", "/./") is a
// spelling another server may read as a different path, a token endpoint
// included, and is refused.
func plainAPIPath(p string) bool {
	if len(p) < 2 || p[0] != '/' {
		return false
	}
	segStart := 1
	for i := 1; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			seg := p[segStart:i]
			if seg == "" || seg[len(seg)-1] == '.' {
				return false // empty, ".", ".." or a trailing dot
			}
			segStart = i + 1
			continue
		}
		switch c := p[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-', c == '.':
		default:
			return false
		}
	}
	return true
}

func (g *APIGateway) checkAllow() error {
	if len(g.Allow) == 0 {
		return fmt.Errorf("wechat_api: allow lists no path, so nothing would be forwarded: list the WeChat API paths your upstreams call, or * for all")
	}
	if g.MaxBody < 0 {
		return fmt.Errorf("wechat_api: max_body must be positive")
	}
	g.allowed = make(map[string]bool, len(g.Allow))
	for _, p := range g.Allow {
		switch {
		case p == "*":
			g.allowAll = true
		case !strings.HasPrefix(p, "/") || path.Clean(p) != p || !plainAPIPath(p):
			return fmt.Errorf("wechat_api: allow %q: a path is written as WeChat documents it, such as /wxa/msg_sec_check", p)
		case isTokenPath(p):
			return fmt.Errorf("wechat_api: allow %q: the token endpoints are never forwarded (the gateway never hands out a token)", p)
		default:
			g.allowed[p] = true
		}
	}
	return nil
}

// Cleanup releases this config's hold on the store and token caches.
func (g *APIGateway) Cleanup() error {
	return g.inFlight.close(g.logger, func() error {
		g.wxConn.Close()
		return g.sh.release()
	})
}

// ServeHTTP forwards the call to WeChat with the app's access token, or
// serves a session-key service, or refuses it. It never calls next: the
// gateway answers every request it gets.
func (g *APIGateway) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	g.inFlight.enter()
	defer g.inFlight.leave()
	return g.serve(w, r)
}

func (g *APIGateway) serve(w http.ResponseWriter, r *http.Request) error {
	p := r.URL.Path
	label := "other"
	if g.allowed[p] {
		label = p
	}
	if isTokenPath(p) || (label == "other" && !g.allowAll) {
		after := apierr.Unwanted(w, r)
		g.answerError(w, r, label, "", "", apierr.APINotAllowed)
		after()
		return nil
	}
	if !plainAPIPath(p) {
		// Only `allow *` gets here: a listed path is a plain one.
		after := apierr.Unwanted(w, r)
		g.answerError(w, r, label, "", "", apierr.InvalidRequest.WithMessage("The path is not a WeChat API path: it may hold only letters, digits, '_', '-', '/' and '.' inside a segment."))
		after()
		return nil
	}
	if isTokenPathWithSuffix(p) {
		after := apierr.Unwanted(w, r)
		g.answerError(w, r, label, "", "", apierr.APINotAllowed)
		after()
		return nil
	}
	if r.ContentLength != 0 && compressedBody(r.Header) {
		// WeChat takes only plain bodies, and a session-key service
		// signs the bytes it is given: a compressed one would reach
		// WeChat as garbage or be signed as such.
		after := apierr.Unwanted(w, r)
		g.answerError(w, r, label, "", "", errCompressedBody)
		after()
		return nil
	}
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		var aerr *apierr.Error
		if body, aerr = apierr.ReadBodyUpTo(w, r, g.MaxBody, apierr.GatewayTooLarge); aerr != nil {
			after := apierr.Unwanted(w, r)
			g.answerError(w, r, label, "", "", aerr)
			after()
			return nil
		}
	}
	q, aerr := splitQuery(r.URL.RawQuery, sessionKeyPaths[p])
	if aerr == nil {
		q.appid, aerr = g.pickApp(q.fromAppID, r.Header.Values("X-WX-APPID"))
	}
	if aerr != nil {
		g.answerError(w, r, label, q.appid, "", aerr)
		return nil
	}
	if sessionKeyPaths[p] {
		g.serveSessionKey(w, r, label, q, body)
		return nil
	}
	g.forward(w, r, label, q, r.Method, "", body)
	return nil
}

var errCompressedBody = apierr.InvalidRequest.WithMessage("The body has a Content-Encoding: send it uncompressed, as WeChat takes it.")

// compressedBody reports whether the request names a Content-Encoding
// other than identity.
func compressedBody(h http.Header) bool {
	for _, v := range h.Values("Content-Encoding") {
		for e := range strings.SplitSeq(v, ",") {
			if e = strings.TrimSpace(e); e != "" && !strings.EqualFold(e, "identity") {
				return true
			}
		}
	}
	return false
}

// forward sends the call on as method and writes WeChat's answer as it
// came: status, Content-Type and body. extra is added to the query.
func (g *APIGateway) forward(w http.ResponseWriter, r *http.Request, label string, q gatewayQuery, method, extra string, body []byte) {
	a, err := g.call(r.Context(), method, r.URL.Path, q, extra, r.Header.Get("Content-Type"), body)
	if err != nil {
		g.answerWeChatError(w, r, label, q, err)
		return
	}
	writeAnswer(w, a)
	g.done(r, label, answerResult(a), q.appid, q.openid)
}

// call sends one call with the app's token (see wechat.Client.Forward).
func (g *APIGateway) call(ctx context.Context, method, path string, q gatewayQuery, extra, contentType string, body []byte) (*wechat.Answer, error) {
	query := q.rest
	if extra != "" {
		if query != "" {
			query += "&"
		}
		query += extra
	}
	return g.wx.Forward(ctx, q.appid, method, path, query, contentType, body)
}

func writeAnswer(w http.ResponseWriter, a *wechat.Answer) {
	h := w.Header()
	if a.ContentType != "" {
		h.Set("Content-Type", a.ContentType)
	}
	h.Set("Content-Length", strconv.Itoa(len(a.Body)))
	w.WriteHeader(a.Status)
	w.Write(a.Body)
}

// answerResult is the metric's result of a WeChat answer: ok, its
// errcode, or unavailable for a 5xx without one.
func answerResult(a *wechat.Answer) string {
	switch {
	case a.Errcode != 0:
		return errcodeLabel(a.Errcode)
	case a.Status >= 500:
		return "unavailable"
	}
	return "ok"
}

// errcodeLabels bounds the errcodes the gateway's metric counts under a
// label of their own: a faulty or hostile api_base could answer a new one
// every call.
var errcodeLabels = metrics.Labels{Max: 100}

// errcodeLabel is the metric's result for an errcode. WeChat's errcodes
// are -1 and five or six digits.
func errcodeLabel(code int) string {
	if code < -1 || code > 999999 {
		return metrics.Other
	}
	return errcodeLabels.Of(strconv.Itoa(code))
}

// answerWeChatError answers a call WeChat gave no usable answer to, or
// whose token could not be had.
func (g *APIGateway) answerWeChatError(w http.ResponseWriter, r *http.Request, label string, q gatewayQuery, err error) {
	ae := g.sh.wechatFailure(r.Context(), "api "+label, q.appid, err)
	if errors.Is(err, wechat.ErrAnswerTooLarge) {
		ae = ae.WithMessage("WeChat's answer is larger than " + strconv.Itoa(wechat.MaxForwardAnswer>>20) + " MiB, more than the gateway passes on.")
	}
	result := "unavailable"
	var we *wechat.Error
	if errors.As(err, &we) {
		result = errcodeLabel(we.Code)
	}
	apierr.Write(w, r, ae)
	g.done(r, label, result, q.appid, q.openid)
}

// answerError writes one of the gateway's own error answers.
func (g *APIGateway) answerError(w http.ResponseWriter, r *http.Request, label, appid, openid string, ae *apierr.Error) {
	apierr.Write(w, r, ae)
	g.done(r, label, ae.Code(), appid, openid)
}

// done counts the call and writes its audit entry.
func (g *APIGateway) done(r *http.Request, label, result, appid, openid string) {
	metrics.APIRequests.WithLabelValues(label, result).Inc()
	audit.Event(g.audit, r, "api", result, appid, openid, "", zap.String("path", r.URL.Path))
}

// pickApp chooses the app: the only one, else the one from_appid names,
// else the one X-WX-APPID names. X-WX-APPID given twice names none, as
// from_appid given twice does.
func (g *APIGateway) pickApp(fromAppID string, header []string) (string, *apierr.Error) {
	if len(g.sh.secrets) == 1 {
		return g.sh.pickApp("", nil, nil)
	}
	named := fromAppID
	if named == "" {
		switch len(header) {
		case 0:
		case 1:
			named = header[0]
		default:
			return "", errGatewayAppTwice
		}
	}
	return g.sh.pickApp(named, errGatewayAppMissing, errGatewayAppUnknown)
}

// The answers of a gateway call that names no app, or one not served.
var (
	errGatewayAppMissing = apierr.InvalidRequest.WithMessage("This gateway serves several mini programs: name one with the from_appid query parameter or the X-WX-APPID header.")
	errGatewayAppUnknown = apierr.InvalidRequest.WithMessage("The appid is not one this gateway serves.")
	errGatewayAppTwice   = apierr.InvalidRequest.WithMessage("X-WX-APPID is given twice.")
)

// gatewayQuery is a caller's query string taken apart.
type gatewayQuery struct {
	rest      string // what goes on to WeChat, in the caller's order and encoding
	fromAppID string
	openid    string
	appid     string // the app chosen
}

// splitQuery removes access_token (the caller's is never sent: the app's
// is added) and from_appid from a query; with sessionKey it also removes
// signature and sig_method, which the gateway makes, and requires openid.
// A part is dropped as an access_token in any spelling another server
// may read as one (see tokenParam).
func splitQuery(raw string, sessionKey bool) (gatewayQuery, *apierr.Error) {
	var q gatewayQuery
	if !sessionKey && plainQuery(raw) {
		q.rest = raw
		return q, nil
	}
	var rest strings.Builder
	var seenFrom bool
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			return q, apierr.InvalidRequest.WithMessage("The query string is malformed.")
		}
		switch {
		case tokenParam(part):
			continue
		case name == "from_appid":
			if seenFrom {
				return q, apierr.InvalidRequest.WithMessage("from_appid is given twice.")
			}
			seenFrom = true
			if q.fromAppID, err = url.QueryUnescape(v); err != nil {
				return q, apierr.InvalidRequest.WithMessage("The query string is malformed.")
			}
			continue
		case sessionKey && (foldParam(name) == "signature" || foldParam(name) == "sig_method"):
			continue
		case sessionKey && name == "openid":
			if q.openid != "" {
				return q, apierr.InvalidRequest.WithMessage("openid is given twice.")
			}
			if q.openid, err = url.QueryUnescape(v); err != nil || !wechat.ValidID(q.openid) {
				return q, apierr.InvalidRequest.WithMessage("The openid is malformed.")
			}
		}
		if rest.Len() > 0 {
			rest.WriteByte('&')
		}
		rest.WriteString(part)
	}
	if sessionKey && q.openid == "" {
		return q, apierr.InvalidRequest.WithMessage("The query parameter openid is required: the user whose session is meant.")
	}
	q.rest = rest.String()
	return q, nil
}

// plainQuery reports whether a query can hold no spelling of access_token
// nor from_appid: no escape, no byte outside ASCII, and no "access" in
// any case.
func plainQuery(raw string) bool {
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '%' || c >= 0x80:
			return false
		case c == 'a' || c == 'A':
			if len(raw)-i >= 6 && strings.EqualFold(raw[i:i+6], "access") {
				return false
			}
		case c == 'f':
			if strings.HasPrefix(raw[i:], "from_appid") {
				return false
			}
		}
	}
	return true
}

// tokenParam reports whether a query part ("name=value") is, or holds, an
// access_token as some server may read it: percent-decoded (again and
// again, for servers that decode twice), split on '&' and ';', each name
// folded by foldParam. So access_token, ACCESS_TOKEN, access_token[],
// access_token%00, access.token, access%5Ftoken and a=1;access_token=x
// are all dropped.
func tokenParam(part string) bool {
	s := part
	for range 4 {
		for piece := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == '&' || r == ';' }) {
			name, _, _ := strings.Cut(piece, "=")
			if strings.HasPrefix(foldParam(name), "access_token") {
				return true
			}
		}
		d, err := url.QueryUnescape(s)
		if err != nil {
			d, err = url.PathUnescape(s)
		}
		if err != nil || d == s {
			return false
		}
		s = d
	}
	return false
}

// foldParam is a parameter name as a lenient server may read it: letters
// in lower case (also those that fold to an ASCII letter, such as the
// Kelvin sign), digits kept, every other character '_' (PHP turns '.' and
// ' ' into '_'), and leading and trailing '_' trimmed (NUL, spaces,
// brackets).
func foldParam(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	for _, r := range name {
		switch {
		case 'a' <= r && r <= 'z', '0' <= r && r <= '9':
			b.WriteRune(r)
		case 'A' <= r && r <= 'Z':
			b.WriteRune(r + 'a' - 'A')
		default:
			b.WriteByte(asciiFold(r))
		}
	}
	return strings.Trim(b.String(), "_")
}

// asciiFold is the lower-case ASCII letter r folds to (ſ to s, K to k),
// else '_'.
func asciiFold(r rune) byte {
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if 'a' <= f && f <= 'z' {
			return byte(f)
		}
		if 'A' <= f && f <= 'Z' {
			return byte(f + 'a' - 'A')
		}
	}
	return '_'
}

// The session-key services: WeChat APIs that need the user's session_key,
// which only this server holds, served for the user's newest live session.
const (
	pathCheckSession  = "/wxa/checksession"
	pathResetKey      = "/wxa/resetusersessionkey"
	pathUserSignature = "/wechat_auth/user_signature"
)

var sessionKeyPaths = map[string]bool{pathCheckSession: true, pathResetKey: true, pathUserSignature: true}

// sessionHMAC is the signature WeChat wants made with a session_key:
// hex(hmac_sha256(key = the session_key's base64 text, message)).
func sessionHMAC(sessionKey string, message []byte) string {
	m := hmac.New(sha256.New, []byte(sessionKey))
	m.Write(message)
	return hex.EncodeToString(m.Sum(nil))
}

func (g *APIGateway) serveSessionKey(w http.ResponseWriter, r *http.Request, label string, q gatewayQuery, body []byte) {
	s, aerr := g.newestSession(r, q)
	if aerr != nil {
		g.answerError(w, r, label, q.appid, q.openid, aerr)
		return
	}
	switch r.URL.Path {
	case pathUserSignature:
		if r.Method != http.MethodPost || len(body) == 0 {
			g.answerError(w, r, label, q.appid, q.openid, apierr.InvalidRequest.WithMessage("POST the exact signData of wx.requestVirtualPayment as the body."))
			return
		}
		apierr.WriteJSON(w, http.StatusOK, map[string]string{"signature": sessionHMAC(s.SessionKey, body), "sig_method": "hmac_sha256"})
		g.done(r, label, "ok", q.appid, q.openid)
	case pathCheckSession, pathResetKey:
		// A GET, as WeChat documents it, whatever the caller sent.
		g.sessionKeyCall(w, r, label, q, s)
	}
}

func signatureQuery(s *session.Session) string {
	return "signature=" + sessionHMAC(s.SessionKey, nil) + "&sig_method=hmac_sha256"
}

// newestSession finds the user's newest live session.
func (g *APIGateway) newestSession(r *http.Request, q gatewayQuery) (*session.Session, *apierr.Error) {
	s, err := g.sh.store.NewestSession(r.Context(), q.appid, q.openid)
	switch {
	case errors.Is(err, session.ErrNoUserSession):
		return nil, apierr.NoLiveSession
	case err != nil:
		g.logger.Warn("session store unavailable", zap.Error(err))
		return nil, apierr.StoreUnavailable
	}
	return s, nil
}

// sessionKeyCall makes checksession or resetusersessionkey with the
// signature of the user's session_key, and answers WeChat's answer
// without any session_key: WeChat's answer is input too, and must not
// hand the caller a key, errors included. A reset's new key replaces the
// stored one (later decryption and signing use it) only from a success
// answer for the same openid whose members are each given once.
func (g *APIGateway) sessionKeyCall(w http.ResponseWriter, r *http.Request, label string, q gatewayQuery, s *session.Session) {
	a, err := g.call(r.Context(), http.MethodGet, r.URL.Path, q, signatureQuery(s), "", nil)
	if err != nil {
		g.answerWeChatError(w, r, label, q, err)
		return
	}
	api := path.Base(r.URL.Path)
	sa, err := readSessionAnswer(a.Body)
	if err == nil && ((s.SessionKey != "" && bytes.Contains(sa.body, []byte(s.SessionKey))) || (sa.sessionKey != "" && bytes.Contains(sa.body, []byte(sa.sessionKey)))) {
		err = errors.New("answer holds a session_key elsewhere")
	}
	if err != nil {
		g.answerWeChatError(w, r, label, q, &wechat.UnavailableError{API: api, Err: err})
		return
	}
	if r.URL.Path == pathResetKey && a.Errcode == 0 && a.Status == http.StatusOK {
		if !wechat.ValidSessionKey(sa.sessionKey) || sa.openid != s.OpenID {
			// A key that is not base64 of 16 bytes, or not said to be
			// this user's, is never stored.
			g.answerWeChatError(w, r, label, q, &wechat.UnavailableError{API: api, Err: errors.New("answer without a valid session_key for the user")})
			return
		}
		if err := g.sh.store.SetSessionKey(r.Context(), s, sa.sessionKey); err != nil {
			// WeChat has rotated the key: the stored one is stale now.
			g.logger.Warn("new session_key could not be stored; the user must log in again", zap.Error(err))
			aerr := apierr.StoreUnavailable
			if errors.Is(err, session.ErrNoSession) {
				aerr = apierr.NoLiveSession
			}
			g.answerError(w, r, label, q.appid, q.openid, aerr)
			return
		}
	}
	writeAnswer(w, &wechat.Answer{Status: a.Status, ContentType: "application/json; charset=utf-8", Body: sa.body})
	g.done(r, label, answerResult(a), q.appid, q.openid)
}

// sessionAnswer is a session-key service's answer from WeChat, re-encoded.
type sessionAnswer struct {
	body       []byte // the answer without any member named session_key, at any depth
	openid     string // the top-level openid, when a string
	sessionKey string // the top-level session_key, when a string
}

// readSessionAnswer reads WeChat's answer, which must be one JSON object
// in which no object gives a member twice (names compared as a lenient
// reader would: folded by foldParam), and re-encodes it without the
// members whose folded name is session_key, members in WeChat's order.
func readSessionAnswer(body []byte) (*sessionAnswer, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var sa sessionAnswer
	var out bytes.Buffer
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, apierr.ErrNotObject
	}
	if err := copyObject(dec, &out, 0, &sa); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, apierr.ErrTrailing
	}
	sa.body = out.Bytes()
	return &sa, nil
}

// maxAnswerDepth bounds the nesting of a session-key service's answer.
const maxAnswerDepth = 32

// copyObject copies the members of an object whose '{' was read to out,
// dropping session_key members; top (depth 0) also fills sa.
func copyObject(dec *json.Decoder, out *bytes.Buffer, depth int, sa *sessionAnswer) error {
	if depth > maxAnswerDepth {
		return apierr.ErrNotObject
	}
	out.WriteByte('{')
	seen := make(map[string]bool, 8)
	first := true
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return apierr.ErrNotObject
		}
		name := tok.(string)
		folded := foldParam(name)
		if seen[folded] {
			return &apierr.FieldError{Name: name, Twice: true}
		}
		seen[folded] = true
		if folded == "session_key" {
			var v any
			if err := dec.Decode(&v); err != nil {
				return apierr.ErrNotObject
			}
			if str, ok := v.(string); ok && depth == 0 && name == "session_key" {
				sa.sessionKey = str
			}
			continue
		}
		if !first {
			out.WriteByte(',')
		}
		first = false
		nb, _ := json.Marshal(name)
		out.Write(nb)
		out.WriteByte(':')
		mark := out.Len()
		if err := copyValue(dec, out, depth+1, sa); err != nil {
			return err
		}
		if depth == 0 && name == "openid" {
			json.Unmarshal(out.Bytes()[mark:], &sa.openid)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return apierr.ErrNotObject
	}
	out.WriteByte('}')
	return nil
}

func copyValue(dec *json.Decoder, out *bytes.Buffer, depth int, sa *sessionAnswer) error {
	tok, err := dec.Token()
	if err != nil {
		return apierr.ErrNotObject
	}
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			return copyObject(dec, out, depth, sa)
		case '[':
			if depth > maxAnswerDepth {
				return apierr.ErrNotObject
			}
			out.WriteByte('[')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					out.WriteByte(',')
				}
				if err := copyValue(dec, out, depth+1, sa); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil {
				return apierr.ErrNotObject
			}
			out.WriteByte(']')
			return nil
		}
		return apierr.ErrNotObject
	case json.Number:
		out.WriteString(v.String())
	case nil:
		out.WriteString("null")
	default: // string, bool
		b, _ := json.Marshal(v)
		out.Write(b)
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*APIGateway)(nil)
	_ caddy.CleanerUpper          = (*APIGateway)(nil)
	_ caddyhttp.MiddlewareHandler = (*APIGateway)(nil)
	_ caddy.Module                = (*APIGateway)(nil)
	_ caddyfile.Unmarshaler       = (*APIGateway)(nil)
)
