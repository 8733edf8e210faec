// Package wechat is a small client for the WeChat Mini Program server APIs
// that wechat_auth needs: code2Session, stable access tokens and the phone
// number API. It maps WeChat's answers to typed errors and never puts a
// secret, code or session_key into an error message.
package wechat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"
)

// DefaultBaseURL is WeChat's API endpoint.
const DefaultBaseURL = "https://api.weixin.qq.com"

// DefaultTimeout bounds every call to WeChat.
const DefaultTimeout = 5 * time.Second

// maxResponse bounds how much of a WeChat answer is read.
const maxResponse = 1 << 20

// API names, used in errors and metrics.
const (
	APICode2Session = "jscode2session"
	APIStableToken  = "stable_token"
	APIPhoneNumber  = "getuserphonenumber"
)

// Error is an answer from WeChat with a non-zero errcode.
type Error struct {
	API     string
	Code    int
	Message string // WeChat's errmsg, withheld when it quotes the request
}

func (e *Error) Error() string {
	return fmt.Sprintf("wechat %s: errcode %d: %s", e.API, e.Code, e.Message)
}

// UnavailableError means WeChat could not be reached or gave no usable
// answer: a transport error, a timeout, a 5xx status or a body that is not
// JSON. The wrapped error never contains the request URL (which holds the
// app secret and the login code).
type UnavailableError struct {
	API string
	Err error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("wechat %s unavailable: %v", e.API, e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// ErrUnknownApp is returned for an appid the client has no secret for.
var ErrUnknownApp = errors.New("wechat: unknown appid")

// ErrcodeOf returns WeChat's errcode carried by err, or 0.
func ErrcodeOf(err error) int {
	var we *Error
	if errors.As(err, &we) {
		return we.Code
	}
	return 0
}

// Observer is told about every call to WeChat; result is "ok",
// "unavailable" or the errcode as a decimal string.
type Observer func(api, result string, d time.Duration)

// Config configures a Client.
type Config struct {
	// BaseURL is WeChat's API root; DefaultBaseURL when empty.
	BaseURL string
	// Apps maps each appid to its app secret.
	Apps map[string]string
	// HTTPClient makes the calls; a client with no timeout of its own is
	// fine, every call is bounded by Timeout.
	HTTPClient *http.Client
	// Timeout bounds each call; DefaultTimeout when zero.
	Timeout time.Duration
	// Observe, when set, is called after each call to WeChat.
	Observe Observer
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
	// Tokens holds, per appid, the cache of its access token. Clients
	// given the same cache share one token (and one fetch at a time), so
	// a process that rebuilds its Client, as Caddy does on every config
	// reload, keeps the token. Apps without one get a cache of their own.
	Tokens map[string]*TokenCache
}

// Client calls WeChat's server APIs. It is safe for concurrent use.
type Client struct {
	base    string
	apps    map[string]string
	hc      *http.Client
	timeout time.Duration
	observe Observer
	now     func() time.Time

	logins singleflight.Group // keyed by appid + code

	tokens map[string]*TokenCache // by appid; fixed after New
}

// New returns a Client for cfg.
func New(cfg Config) *Client {
	c := &Client{
		base:    strings.TrimRight(cfg.BaseURL, "/"),
		apps:    cfg.Apps,
		hc:      cfg.HTTPClient,
		timeout: cfg.Timeout,
		observe: cfg.Observe,
		now:     cfg.Now,
		tokens:  make(map[string]*TokenCache, len(cfg.Apps)),
	}
	for appid := range cfg.Apps {
		tc := cfg.Tokens[appid]
		if tc == nil {
			tc = NewTokenCache()
		}
		c.tokens[appid] = tc
	}
	if c.base == "" {
		c.base = DefaultBaseURL
	}
	// A copy, so that redirects are never followed whatever the caller's
	// client does: api_base answering 3xx is broken or hostile, and the
	// call must fail rather than carry the secret or token elsewhere.
	hc := http.Client{}
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.hc = &hc
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// Session is a successful code2Session answer.
type Session struct {
	OpenID     string `json:"openid"`
	SessionKey string `json:"session_key"`
	UnionID    string `json:"unionid"`
}

// Code2Session exchanges a wx.login code for the user's openid and
// session_key. Concurrent calls with the same code share one request to
// WeChat. A code is never sent twice: WeChat codes are single-use, so after
// a transport error the client must call wx.login again.
func (c *Client) Code2Session(ctx context.Context, appid, code string) (*Session, error) {
	secret, ok := c.apps[appid]
	if !ok {
		return nil, ErrUnknownApp
	}
	ch := c.logins.DoChan(appid+"\x00"+code, func() (any, error) {
		// The shared call must not die with the first caller's request.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
		defer cancel()
		q := url.Values{
			"appid":      {appid},
			"secret":     {secret},
			"js_code":    {code},
			"grant_type": {"authorization_code"},
		}
		var s struct {
			Session
			status
		}
		if err := c.call(cctx, APICode2Session, http.MethodGet, "/sns/jscode2session?"+q.Encode(), nil, &s); err != nil {
			return nil, err
		}
		if err := s.Session.check(); err != nil {
			return nil, &UnavailableError{API: APICode2Session, Err: err}
		}
		return &s.Session, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		s := *r.Val.(*Session)
		return &s, nil
	case <-ctx.Done():
		return nil, &UnavailableError{API: APICode2Session, Err: ctx.Err()}
	}
}

// status is the error part every WeChat answer may carry. A missing errcode
// means success.
type status struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

func (s *status) errcode() int    { return s.ErrCode }
func (s *status) message() string { return s.ErrMsg }

// answer is a decoded WeChat response: any struct that embeds status.
type answer interface {
	errcode() int
	message() string
}

// call performs one request and decodes a JSON answer into out, which must
// embed status. An answer that is not JSON, or gives a member twice, is an
// UnavailableError. It retries nothing, and keeps net/http from retrying.
func (c *Client) call(ctx context.Context, api, method, pathAndQuery string, body any, out answer) (err error) {
	start := time.Now()
	defer func() {
		if c.observe != nil {
			c.observe(api, resultOf(err), time.Since(start))
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	var rd io.Reader
	var sent []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("wechat %s: encode request: %w", api, err)
		}
		rd = strings.NewReader(string(b))
		sent = b
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+pathAndQuery, rd)
	if err != nil {
		// The URL holds secrets: report the failure without it.
		return &UnavailableError{API: api, Err: errors.New("cannot build request (check api_base)")}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if req.Body == nil {
		// net/http's Transport re-sends an idempotent request (a GET) by
		// itself when a reused connection closes before the answer, and
		// WeChat may have consumed a login code by then. It leaves alone a
		// request that has a body and no GetBody; an empty one is dropped
		// before the request is written, so nothing else changes on the
		// wire.
		req.Body = noResend{}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return &UnavailableError{API: api, Err: stripURL(err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return &UnavailableError{API: api, Err: stripURL(err)}
	}
	if resp.StatusCode >= 300 {
		return &UnavailableError{API: api, Err: fmt.Errorf("HTTP status %d", resp.StatusCode)}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return &UnavailableError{API: api, Err: errors.New("answer is not JSON")}
	}
	if RepeatsMember(raw) {
		return &UnavailableError{API: api, Err: errors.New("answer gives a member twice")}
	}
	if code := out.errcode(); code != 0 {
		return &Error{API: api, Code: code, Message: safeMessage(out.message(), pathAndQuery, sent)}
	}
	return nil
}

// maxMessage bounds how much of WeChat's errmsg an error carries.
const maxMessage = 200

// withheld stands for an errmsg that quoted the request.
const withheld = "(errmsg withheld: it quotes the request)"

// safeMessage is WeChat's errmsg as an error may carry it into a log.
// Some of WeChat's answers, and an egress proxy's, quote the request URL,
// which holds the app secret, the login code or the access token (and a
// POST body holds the secret): an errmsg that contains a value of the
// request's query or JSON body, or any secretPiece consecutive characters
// of one, in any common escaping, or a parameter name followed by '=', is
// withheld whole. Control characters become spaces and the message is cut
// to maxMessage bytes.
func safeMessage(msg, pathAndQuery string, body []byte) string {
	var values, names []string
	if _, q, ok := strings.Cut(pathAndQuery, "?"); ok {
		if vs, err := url.ParseQuery(q); err == nil {
			for k, v := range vs {
				names = append(names, k)
				values = append(values, v...)
			}
		}
	}
	var fields map[string]any
	if json.Unmarshal(body, &fields) == nil {
		for k, v := range fields {
			names = append(names, k)
			if s, ok := v.(string); ok {
				values = append(values, s)
			}
		}
	}
	lower := strings.ToLower(msg)
	for _, v := range values {
		if len(v) < 4 {
			continue
		}
		for _, form := range []string{v, url.QueryEscape(v), url.PathEscape(v)} {
			if quotes(msg, form) {
				return withheld
			}
		}
	}
	for _, k := range names {
		if strings.Contains(lower, strings.ToLower(k)+"=") {
			return withheld
		}
	}
	b := []byte(msg)
	if len(b) > maxMessage {
		b = b[:maxMessage]
	}
	for i, c := range b {
		if c < 0x20 || c == 0x7f {
			b[i] = ' '
		}
	}
	return strings.ToValidUTF8(string(b), "")
}

// quotes reports whether msg holds v, or any secretPiece consecutive
// bytes of it.
func quotes(msg, v string) bool {
	if len(v) <= secretPiece {
		return strings.Contains(msg, v)
	}
	for i := 0; i+secretPiece <= len(v); i++ {
		if strings.Contains(msg, v[i:i+secretPiece]) {
			return true
		}
	}
	return false
}

// noResend is the empty body of a request net/http must not send twice.
type noResend struct{}

func (noResend) Read([]byte) (int, error) { return 0, io.EOF }
func (noResend) Close() error             { return nil }

// stripURL drops the request URL (which carries the secret and the code)
// from a transport error.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return errors.New("timeout")
		}
		return ue.Err
	}
	return err
}

func resultOf(err error) string {
	if err == nil {
		return "ok"
	}
	var we *Error
	if errors.As(err, &we) {
		if knownErrcodes[we.Code] {
			return strconv.Itoa(we.Code)
		}
		// Metric labels stay a small set whatever WeChat (or a sandbox
		// visitor's errcode-N code) answers.
		return "other"
	}
	return "unavailable"
}

// knownErrcodes are the errcodes of WeChat's documentation for the APIs
// this client calls; they are reported as they are.
var knownErrcodes = map[int]bool{
	-1: true, 40001: true, 40002: true, 40013: true, 40014: true, 40029: true,
	40125: true, 40163: true, 40164: true, 40226: true, 41002: true, 41004: true,
	41008: true, 42001: true, 45011: true,
}
