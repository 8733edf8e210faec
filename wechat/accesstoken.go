package wechat

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Errcodes that say an access token is no longer good.
const (
	errcodeInvalidToken  = 40001
	errcodeInvalidToken2 = 40014
	errcodeTokenExpired  = 42001
)

// tokenMargin is how long before WeChat's expiry a cached token is dropped.
const tokenMargin = 5 * time.Minute

// maxTokenLife is the longest life, in seconds, WeChat gives an access
// token.
const maxTokenLife = 7200

type accessToken struct {
	value   string
	expires time.Time // already less tokenMargin
}

// TokenCache holds one app's access token. It is safe for concurrent use
// and may be shared by several Clients of the same app.
type TokenCache struct {
	mu      sync.Mutex
	tok     *accessToken
	recent  [recentTokens]string // tokens replaced or dropped, newest first
	fetches singleflight.Group
}

// recentTokens is how many earlier tokens of an app are kept, so that an
// answer echoing one (a caching proxy's page) can still be scrubbed.
const recentTokens = 4

// NewTokenCache returns an empty cache.
func NewTokenCache() *TokenCache { return new(TokenCache) }

func (tc *TokenCache) get() *accessToken {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.tok
}

func (tc *TokenCache) set(t *accessToken) {
	tc.mu.Lock()
	if tc.tok != nil && tc.tok.value != t.value {
		tc.rememberLocked(tc.tok.value)
	}
	tc.tok = t
	tc.mu.Unlock()
}

// rememberLocked keeps v among the recent tokens.
func (tc *TokenCache) rememberLocked(v string) {
	for _, r := range tc.recent {
		if r == v {
			return
		}
	}
	copy(tc.recent[1:], tc.recent[:])
	tc.recent[0] = v
}

// appendKnown appends the current token and the recent ones to dst.
func (tc *TokenCache) appendKnown(dst []string) []string {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.tok != nil {
		dst = append(dst, tc.tok.value)
	}
	for _, r := range tc.recent {
		if r != "" {
			dst = append(dst, r)
		}
	}
	return dst
}

// AccessToken returns the app's access token from POST /cgi-bin/stable_token
// with force_refresh false, cached until five minutes before it expires.
// Stable tokens are the same for every caller, so several instances never
// invalidate each other's token; the classic /cgi-bin/token is never used
// and a forced refresh is never made. One fetch at a time per app.
func (c *Client) AccessToken(ctx context.Context, appid string) (string, error) {
	secret, ok := c.apps[appid]
	if !ok {
		return "", ErrUnknownApp
	}
	tc := c.tokens[appid]
	if t := tc.get(); t != nil && c.now().Before(t.expires) {
		return t.value, nil
	}
	ch := tc.fetches.DoChan(appid, func() (any, error) {
		// The fetch is shared, so it must not die with the first caller's
		// request; both attempts share one timeout.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
		defer cancel()
		body := map[string]any{
			"grant_type":    "client_credential",
			"appid":         appid,
			"secret":        secret,
			"force_refresh": false,
		}
		var out struct {
			status
			AccessToken string `json:"access_token"`
			ExpiresIn   int    `json:"expires_in"`
		}
		err := c.call(cctx, APIStableToken, http.MethodPost, "/cgi-bin/stable_token", body, &out)
		// Fetching a stable token is idempotent: retry once after a
		// transport failure, unless the time is already up.
		var ue *UnavailableError
		if errors.As(err, &ue) && cctx.Err() == nil {
			err = c.call(cctx, APIStableToken, http.MethodPost, "/cgi-bin/stable_token", body, &out)
		}
		if err != nil {
			return nil, err
		}
		if !plausibleAccessToken(out.AccessToken) {
			return nil, &UnavailableError{API: APIStableToken, Err: errors.New("answer without a plausible access_token")}
		}
		// WeChat's tokens live at most two hours: a longer (or
		// overflowing) expires_in is read as two hours.
		life := min(max(out.ExpiresIn, 0), maxTokenLife)
		nt := &accessToken{
			value:   out.AccessToken,
			expires: c.now().Add(time.Duration(life)*time.Second - tokenMargin),
		}
		tc.set(nt)
		return nt.value, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(string), nil
	case <-ctx.Done():
		return "", &UnavailableError{API: APIStableToken, Err: ctx.Err()}
	}
}

// dropAccessToken forgets the cached token if it is still the one given.
func (c *Client) dropAccessToken(appid, value string) {
	tc := c.tokens[appid]
	if tc == nil {
		return
	}
	tc.mu.Lock()
	if tc.tok != nil && tc.tok.value == value {
		tc.tok = nil
	}
	tc.rememberLocked(value)
	tc.mu.Unlock()
}

// withAccessToken runs call with the app's access token. When WeChat says
// the token is invalid or expired, the cached token is dropped, a new one
// fetched (force_refresh stays false) and call retried once.
func (c *Client) withAccessToken(ctx context.Context, appid string, call func(token string) error) error {
	for attempt := 0; ; attempt++ {
		tok, err := c.AccessToken(ctx, appid)
		if err != nil {
			return err
		}
		err = call(tok)
		switch ErrcodeOf(err) {
		case errcodeInvalidToken, errcodeInvalidToken2, errcodeTokenExpired:
			if attempt == 0 {
				c.dropAccessToken(appid, tok)
				continue
			}
		}
		return err
	}
}

func tokenQuery(tok string) string {
	return "?access_token=" + url.QueryEscape(tok)
}

// plausibleAccessToken reports whether an access token WeChat gave can be
// one: secretPiece (16) to 2048 visible ASCII characters (WeChat's are
// well over 100; it asks for 512 characters of storage). A shorter one
// would be found, and replaced, all over the answers the gateway passes
// on, and the search for it in them would not tell it from chance.
func plausibleAccessToken(t string) bool {
	if len(t) < secretPiece || len(t) > 2048 {
		return false
	}
	for i := 0; i < len(t); i++ {
		if t[i] < 0x21 || t[i] > 0x7e {
			return false
		}
	}
	return true
}
