// Package wechattest is a fake WeChat server API with real crypto and
// WeChat's documented semantics: single-use login codes that expire after
// five minutes, stable access tokens, the phone number API and the error
// codes of WeChat's documentation. Tests serve it with httptest; wechat_auth's
// sandbox mode runs it in-process through Server.Client.
package wechattest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// API paths the fake serves; Calls counts requests by these.
const (
	PathCode2Session = "/sns/jscode2session"
	PathStableToken  = "/cgi-bin/stable_token"
	PathToken        = "/cgi-bin/token" // classic token: served and counted, never to be used
	PathPhoneNumber  = "/wxa/business/getuserphonenumber"
	PathCheckSession = "/wxa/checksession"

	PathResetSessionKey = "/wxa/resetusersessionkey"
	PathSubscribeSend   = "/cgi-bin/message/subscribe/send"
	PathQRCode          = "/wxa/getwxacodeunlimit"
	PathMsgSecCheck     = "/wxa/msg_sec_check"
)

// WeChat errcodes the fake answers with.
const (
	ErrSystem          = -1
	ErrInvalidToken    = 40001
	ErrInvalidAppID    = 40013
	ErrInvalidCode     = 40029
	ErrInvalidSecret   = 40125
	ErrCodeUsed        = 40163
	ErrCodeBlocked     = 40226
	ErrAppIDMissing    = 41002
	ErrSecretMissing   = 41004
	ErrCodeMissing     = 41008
	ErrTokenExpired    = 42001
	ErrRateLimited     = 45011
	ErrInvalidGrant    = 40002
	ErrSessionKeyStale = 87009
	ErrArgument        = 47003
	ErrInvalidScene    = 40169
	ErrInvalidOpenID   = 40003
)

var errmsgs = map[int]string{
	ErrSystem:          "system error",
	ErrInvalidToken:    "invalid credential, access_token is invalid or not latest",
	ErrInvalidAppID:    "invalid appid",
	ErrInvalidCode:     "invalid code",
	ErrInvalidSecret:   "invalid appsecret",
	ErrCodeUsed:        "code been used",
	ErrCodeBlocked:     "code blocked",
	ErrAppIDMissing:    "appid missing",
	ErrSecretMissing:   "appsecret missing",
	ErrCodeMissing:     "missing code",
	ErrTokenExpired:    "access_token expired",
	ErrRateLimited:     "api minute-quota reach limit mustslower retry next minute",
	ErrInvalidGrant:    "invalid grant_type",
	ErrSessionKeyStale: "invalid signature",
	ErrArgument:        "argument invalid!",
	ErrInvalidScene:    "invalid length for scene",
	ErrInvalidOpenID:   "invalid openid",
}

// CodeTTL is how long a login or phone code stays valid.
const CodeTTL = 5 * time.Minute

// TokenTTL is the lifetime of an access token.
const TokenTTL = 2 * time.Hour

// User is a mini program user as WeChat knows them.
type User struct {
	OpenID     string
	UnionID    string // empty unless the app is bound to an Open Platform account
	SessionKey string // base64 of 16 bytes; generated when empty
}

// Phone is what getuserphonenumber returns for a phone code.
type Phone struct {
	PhoneNumber     string
	PurePhoneNumber string
	CountryCode     string
}

// Options set the fake's behaviour.
type Options struct {
	// AutoCodes makes any unregistered code log in a user derived from
	// (appid, code), so the same code always gives the same openid. A code
	// "errcode-N" answers with errcode N instead, and a phone code
	// "phone-<digits>" gives that number. Without AutoCodes, unregistered
	// codes answer 40029.
	AutoCodes bool
	// ReusableCodes lets a code be used any number of times (sandbox);
	// WeChat's codes are single-use.
	ReusableCodes bool
	// UnionID gives auto users a unionid, as for an app bound to an Open
	// Platform account.
	UnionID bool
	// RotateSessionKey gives a user a new session_key on every login, as
	// WeChat may; data encrypted under the old key then fails to decrypt.
	RotateSessionKey bool
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
}

type app struct {
	secret     string
	token      string
	tokenStart time.Time
}

type code struct {
	appid   string
	user    string // openid of a stored user
	derived *User  // a user of reusable auto codes, stored nowhere
	errcode int
	issued  time.Time
	used    bool
}

type failure struct {
	errcode int
	status  int
	body    string
	drop    bool // close the connection without answering
	hostile Hostile
}

// Server is a fake WeChat API. The zero value is not usable: call NewServer.
type Server struct {
	opts Options
	seed [32]byte // derives the session_keys of reusable auto codes

	mu         sync.Mutex
	apps       map[string]*app
	users      map[string]*User // by openid
	codes      map[string]*code // login codes by appid + "\x00" + code
	phoneCodes map[string]*phoneCode
	failures   map[string][]failure // queued by path
	delay      time.Duration
	calls      map[string]int
	forced     int

	lastQuery map[string]string // raw query of the last call, by path
	lastBody  map[string][]byte // body of the last call, by path
	resetKeys map[string]string // session_keys of derived users after a reset, by openid
	messages  []Message         // subscription messages sent
	msgid     int64
	web       webState // web OAuth codes, tokens and pages seen
}

type phoneCode struct {
	phone  Phone
	issued time.Time
	used   bool
}

// NewServer returns a fake WeChat with no apps.
func NewServer(opts Options) *Server {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		opts:       opts,
		apps:       make(map[string]*app),
		users:      make(map[string]*User),
		codes:      make(map[string]*code),
		phoneCodes: make(map[string]*phoneCode),
		failures:   make(map[string][]failure),
		calls:      make(map[string]int),
		lastQuery:  make(map[string]string),
		lastBody:   make(map[string][]byte),
		resetKeys:  make(map[string]string),
	}
	rand.Read(s.seed[:])
	return s
}

// AddApp registers a mini program and its secret. Registering an app
// again with the same secret keeps its access token.
func (s *Server) AddApp(appid, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.apps[appid]; a != nil && a.secret == secret {
		return
	}
	s.apps[appid] = &app{secret: secret}
}

// AddCode registers a login code of appid for user and returns the user as
// stored (with a generated session_key when none was given).
func (s *Server) AddCode(appid, loginCode string, u User) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	stored := s.userLocked(u)
	s.codes[appid+"\x00"+loginCode] = &code{appid: appid, user: stored.OpenID, issued: s.opts.Now()}
	return *stored
}

// AddErrorCode registers a login code that WeChat answers with errcode.
func (s *Server) AddErrorCode(appid, loginCode string, errcode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[appid+"\x00"+loginCode] = &code{appid: appid, errcode: errcode, issued: s.opts.Now()}
}

// AddPhoneCode registers a phone button code.
func (s *Server) AddPhoneCode(phoneCode string, p Phone) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.phoneCodes[phoneCode] = s.newPhoneCode(p)
}

func (s *Server) newPhoneCode(p Phone) *phoneCode {
	return &phoneCode{phone: p, issued: s.opts.Now()}
}

// User returns the user with this openid as WeChat knows them now.
func (s *Server) User(openid string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[openid]
	if !ok {
		return User{}, false
	}
	return *u, true
}

// FailNext makes the next call to path answer with errcode.
func (s *Server) FailNext(path string, errcode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[path] = append(s.failures[path], failure{errcode: errcode})
}

// FailNextHTTP makes the next call to path answer with an HTTP status and a
// raw body, such as a 502 with an HTML page from a gateway.
func (s *Server) FailNextHTTP(path string, status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[path] = append(s.failures[path], failure{status: status, body: body})
}

// DropNext makes the next call to path close the connection without an
// answer, after reading the request, as a WeChat server dying mid-call
// does. The call is counted: WeChat may have acted on it.
func (s *Server) DropNext(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[path] = append(s.failures[path], failure{drop: true})
}

// SetDelay makes every answer wait d (or until the client gives up).
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// InvalidateAccessToken makes WeChat forget the app's access token, so its
// next use answers 40001 and stable_token issues a new one.
func (s *Server) InvalidateAccessToken(appid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.apps[appid]; a != nil {
		a.token = ""
	}
}

// ExpireAccessToken makes the app's access token expired (42001).
func (s *Server) ExpireAccessToken(appid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.apps[appid]; a != nil && a.token != "" {
		a.tokenStart = s.opts.Now().Add(-TokenTTL - time.Second)
	}
}

// Calls returns how many requests path has received.
func (s *Server) Calls(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[path]
}

// ForcedRefreshes returns how many stable_token calls asked force_refresh.
func (s *Server) ForcedRefreshes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.forced
}

// Client returns an HTTP client whose requests are served by s in-process,
// with no socket: what sandbox mode uses.
func (s *Server) Client() *http.Client {
	return &http.Client{Transport: inProcess{s}}
}

type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(r *http.Request) (resp *http.Response, err error) {
	defer func() {
		// A dropped call (DropNext) aborts the handler: a transport error.
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				panic(v)
			}
			resp, err = nil, errors.New("wechattest: connection closed without an answer")
		}
	}()
	w := httptest.NewRecorder()
	t.h.ServeHTTP(w, r)
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	return w.Result(), nil
}

// ServeHTTP answers WeChat's API routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	s.mu.Lock()
	if _, seen := s.calls[r.URL.Path]; seen || len(s.calls) < maxCountedPaths {
		s.calls[r.URL.Path]++
	}
	earlier := s.lastQuery[r.URL.Path]
	if servedPaths[r.URL.Path] {
		// Only for the APIs served: a sandbox gateway with `allow *` is
		// sent any path, and must not keep a copy of each.
		s.lastQuery[r.URL.Path] = r.URL.RawQuery
		s.lastBody[r.URL.Path] = body
	}
	delay := s.delay
	var f *failure
	if q := s.failures[r.URL.Path]; len(q) > 0 {
		f = &q[0]
		s.failures[r.URL.Path] = q[1:]
	}
	s.mu.Unlock()

	if delay > 0 {
		// The body is read (above): until it is, the server does not
		// notice a client that gave up, and the sleep would outlive it.
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if f != nil {
		if f.drop {
			if r.Body != nil { // nil for a client's GET in-process
				io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
			}
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
				return
			}
			panic(http.ErrAbortHandler) // not hijackable (HTTP/2, in-process): abort
		}
		if f.hostile != 0 {
			s.answerHostile(w, r, f.hostile, earlier)
			return
		}
		if f.status != 0 {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(f.status)
			fmt.Fprint(w, f.body)
			return
		}
		writeErr(w, f.errcode)
		return
	}

	switch r.URL.Path {
	case PathCode2Session:
		s.code2Session(w, r)
	case PathStableToken:
		s.stableToken(w, r)
	case PathToken:
		s.classicToken(w, r)
	case PathPhoneNumber:
		s.phoneNumber(w, r)
	case PathCheckSession:
		s.checkSession(w, r)
	case PathResetSessionKey:
		s.resetSessionKey(w, r)
	case PathSubscribeSend:
		s.subscribeSend(w, r)
	case PathQRCode:
		s.qrCode(w, r)
	case PathMsgSecCheck:
		s.msgSecCheck(w, r)
	default:
		if !s.serveWeb(w, r) {
			http.NotFound(w, r)
		}
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, errcode int) {
	msg := errmsgs[errcode]
	if msg == "" {
		msg = "error"
	}
	writeJSON(w, map[string]any{"errcode": errcode, "errmsg": msg + ", rid: " + rid()})
}

func rid() string {
	var b [6]byte
	rand.Read(b[:])
	return fmt.Sprintf("%x", b)
}

// checkApp validates appid and secret as WeChat does, returning an errcode.
func (s *Server) checkApp(appid, secret string) int {
	switch {
	case appid == "":
		return ErrAppIDMissing
	case secret == "":
		return ErrSecretMissing
	}
	a := s.apps[appid]
	switch {
	case a == nil:
		return ErrInvalidAppID
	case a.secret != secret:
		return ErrInvalidSecret
	}
	return 0
}

// codeRequest reads what every code exchange sends (appid, secret,
// grant_type and the code in the parameter named codeParam) and answers
// WeChat's error when one is wrong. s.mu must be held.
func (s *Server) codeRequest(w http.ResponseWriter, q url.Values, codeParam string) (appid, code string, ok bool) {
	appid, code = q.Get("appid"), q.Get(codeParam)
	if e := s.checkApp(appid, q.Get("secret")); e != 0 {
		writeErr(w, e)
		return "", "", false
	}
	if q.Get("grant_type") != "authorization_code" {
		writeErr(w, ErrInvalidGrant)
		return "", "", false
	}
	if code == "" {
		writeErr(w, ErrCodeMissing)
		return "", "", false
	}
	return appid, code, true
}

func (s *Server) code2Session(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	appid, jsCode, ok := s.codeRequest(w, r.URL.Query(), "js_code")
	if !ok {
		return
	}
	c := s.codes[appid+"\x00"+jsCode]
	if c == nil && s.opts.AutoCodes {
		c = s.autoCode(appid, jsCode)
		// Reusable auto codes need no memory of their own: a sandbox
		// facing the public keeps nothing per code it is sent.
		if !s.opts.ReusableCodes {
			s.codes[appid+"\x00"+jsCode] = c
		}
	}
	switch {
	case c == nil, s.opts.Now().Sub(c.issued) > CodeTTL && !s.opts.ReusableCodes:
		writeErr(w, ErrInvalidCode)
		return
	case c.used && !s.opts.ReusableCodes:
		writeErr(w, ErrCodeUsed)
		return
	}
	c.used = true
	if c.errcode != 0 {
		writeErr(w, c.errcode)
		return
	}
	u := c.derived
	if u == nil {
		u = s.users[c.user]
	}
	if s.opts.RotateSessionKey {
		u.SessionKey = NewSessionKey()
	}
	out := map[string]string{"openid": u.OpenID, "session_key": u.SessionKey}
	if u.UnionID != "" {
		out["unionid"] = u.UnionID
	}
	writeJSON(w, out)
}

// autoCode makes the code of an AutoCodes server: errcode-N fails with N,
// anything else logs in the user derived from (appid, code).
func (s *Server) autoCode(appid, jsCode string) *code {
	c := &code{appid: appid, issued: s.opts.Now()}
	if n, ok := strings.CutPrefix(jsCode, "errcode-"); ok {
		if e, err := strconv.Atoi(n); err == nil && e != 0 {
			c.errcode = e
			return c
		}
	}
	u := User{OpenID: derivedID("o", appid, jsCode)}
	if s.opts.UnionID {
		u.UnionID = derivedID("u", appid, jsCode)
	}
	if s.opts.ReusableCodes && !s.opts.RotateSessionKey {
		// The session_key is derived too, from the openid with a secret of
		// this server's, so the user needs no entry (until a reset).
		u.SessionKey = s.derivedKeyLocked(u.OpenID)
		c.derived = &u
		return c
	}
	c.user = s.userLocked(u).OpenID
	return c
}

// derivedID makes a stable 28-character id shaped like WeChat's.
func derivedID(prefix, appid, jsCode string) string {
	sum := sha256.Sum256([]byte(prefix + "\x00" + appid + "\x00" + jsCode))
	return prefix + base64.RawURLEncoding.EncodeToString(sum[:])[:27]
}

func (s *Server) userLocked(u User) *User {
	if old, ok := s.users[u.OpenID]; ok {
		if u.SessionKey != "" {
			old.SessionKey = u.SessionKey
		}
		if u.UnionID != "" {
			old.UnionID = u.UnionID
		}
		return old
	}
	if u.SessionKey == "" {
		u.SessionKey = NewSessionKey()
	}
	s.users[u.OpenID] = &u
	return &u
}

func (s *Server) stableToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		GrantType    string `json:"grant_type"`
		AppID        string `json:"appid"`
		Secret       string `json:"secret"`
		ForceRefresh bool   `json:"force_refresh"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || r.Method != http.MethodPost {
		writeErr(w, ErrSystem)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.checkApp(req.AppID, req.Secret); e != 0 {
		writeErr(w, e)
		return
	}
	if req.GrantType != "client_credential" {
		writeErr(w, ErrInvalidGrant)
		return
	}
	a := s.apps[req.AppID]
	if req.ForceRefresh {
		s.forced++
		a.token = ""
	}
	now := s.opts.Now()
	if a.token == "" || now.Sub(a.tokenStart) >= TokenTTL {
		a.token = newToken()
		a.tokenStart = now
	}
	left := TokenTTL - now.Sub(a.tokenStart)
	writeJSON(w, map[string]any{"access_token": a.token, "expires_in": int(left / time.Second)})
}

func (s *Server) classicToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.checkApp(q.Get("appid"), q.Get("secret")); e != 0 {
		writeErr(w, e)
		return
	}
	// Every classic call invalidates the previous token.
	a := s.apps[q.Get("appid")]
	a.token, a.tokenStart = newToken(), s.opts.Now()
	writeJSON(w, map[string]any{"access_token": a.token, "expires_in": int(TokenTTL / time.Second)})
}

func newToken() string {
	var b [48]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// tokenApp returns the app whose access token tok is, or the errcode
// WeChat answers for it.
func (s *Server) tokenApp(tok string) (appid string, errcode int) {
	for id, a := range s.apps {
		if a.token != "" && a.token == tok {
			if s.opts.Now().Sub(a.tokenStart) >= TokenTTL {
				return "", ErrTokenExpired
			}
			return id, 0
		}
	}
	return "", ErrInvalidToken
}

func (s *Server) phoneNumber(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Code   string `json:"code"`
		OpenID string `json:"openid"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || r.Method != http.MethodPost {
		writeErr(w, ErrSystem)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	appid, e := s.tokenApp(r.URL.Query().Get("access_token"))
	if e != 0 {
		writeErr(w, e)
		return
	}
	pc := s.phoneCodes[req.Code]
	if pc == nil && s.opts.AutoCodes {
		if digits, ok := strings.CutPrefix(req.Code, "phone-"); ok && digits != "" && strings.Trim(digits, "0123456789") == "" {
			pc = s.newPhoneCode(Phone{PhoneNumber: digits, PurePhoneNumber: digits, CountryCode: "86"})
			if !s.opts.ReusableCodes {
				s.phoneCodes[req.Code] = pc
			}
		}
	}
	switch {
	case pc == nil, s.opts.Now().Sub(pc.issued) > CodeTTL && !s.opts.ReusableCodes:
		writeErr(w, ErrInvalidCode)
		return
	case pc.used && !s.opts.ReusableCodes:
		writeErr(w, ErrCodeUsed)
		return
	}
	pc.used = true
	// WeChat documents countryCode as a string and shows it as a number;
	// the fake sends a number, the harder case for clients.
	cc, _ := strconv.Atoi(pc.phone.CountryCode)
	writeJSON(w, map[string]any{
		"errcode": 0,
		"errmsg":  "ok",
		"phone_info": map[string]any{
			"phoneNumber":     pc.phone.PhoneNumber,
			"purePhoneNumber": pc.phone.PurePhoneNumber,
			"countryCode":     cc,
			"watermark":       map[string]any{"timestamp": s.opts.Now().Unix(), "appid": appid},
		},
	})
}

func (s *Server) checkSession(w http.ResponseWriter, r *http.Request) {
	s.sessionAPI(w, r, false)
}
