package wechat

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// API names of the web OAuth calls, used in errors and metrics.
const (
	APIOAuthAccessToken = "sns_oauth2_access_token"
	APIOAuthUserInfo    = "sns_userinfo"
)

// maxOAuthToken bounds an OAuth access or refresh token; WeChat's are
// about 110 characters.
const maxOAuthToken = 512

// OAuthToken is a successful sns/oauth2/access_token answer: who the
// user is for this app. AccessToken and RefreshToken are the user's
// credentials at WeChat: keep them only where they are needed (the
// snsapi_userinfo call) and never log, store or send them anywhere but
// WeChat. String and GoString leave them out, so printing an OAuthToken
// does not leak them.
type OAuthToken struct {
	OpenID       string
	UnionID      string // empty unless the app is bound to an Open Platform account
	Scope        string // as WeChat granted it: snsapi_base, snsapi_userinfo or snsapi_login, comma-separated when several
	Snapshot     bool   // is_snapshotuser: 1, a "snapshot" page view whose openid is virtual: give no session
	ExpiresIn    int    // seconds the access token lives
	AccessToken  string
	RefreshToken string
}

// String describes t without its tokens.
func (t OAuthToken) String() string {
	return fmt.Sprintf("{openid:%s unionid:%s scope:%s snapshot:%v}", t.OpenID, t.UnionID, t.Scope, t.Snapshot)
}

// GoString describes t without its tokens.
func (t OAuthToken) GoString() string { return "wechat.OAuthToken" + t.String() }

// oauthAnswer is the wire form of sns/oauth2/access_token.
type oauthAnswer struct {
	status
	AccessToken    string `json:"access_token"`
	ExpiresIn      int    `json:"expires_in"`
	RefreshToken   string `json:"refresh_token"`
	OpenID         string `json:"openid"`
	Scope          string `json:"scope"`
	IsSnapshotUser int    `json:"is_snapshotuser"`
	UnionID        string `json:"unionid"`
}

// OAuthAccessToken exchanges the code of a web authorization (an Official
// Account's connect/oauth2/authorize or a website app's qrconnect) for the
// user's openid, unionid and scope. The code is single use and is never
// sent twice, as with Code2Session; concurrent calls with one code (a
// callback loaded twice) share one request. Errcodes 40029 and 40163 are
// KindInvalidCode; -1, a transport error, a 5xx or non-JSON answer, or an
// answer not shaped as WeChat's are an UnavailableError.
func (c *Client) OAuthAccessToken(ctx context.Context, appid, code string) (*OAuthToken, error) {
	secret, ok := c.apps[appid]
	if !ok {
		return nil, ErrUnknownApp
	}
	ch := c.logins.DoChan("oauth\x00"+appid+"\x00"+code, func() (any, error) {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
		defer cancel()
		q := url.Values{
			"appid":      {appid},
			"secret":     {secret},
			"code":       {code},
			"grant_type": {"authorization_code"},
		}
		var a oauthAnswer
		if err := c.call(cctx, APIOAuthAccessToken, http.MethodGet, "/sns/oauth2/access_token?"+q.Encode(), nil, &a); err != nil {
			return nil, err
		}
		t, err := a.check()
		if err != nil {
			return nil, &UnavailableError{API: APIOAuthAccessToken, Err: err}
		}
		return t, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		t := *r.Val.(*OAuthToken)
		return &t, nil
	case <-ctx.Done():
		return nil, &UnavailableError{API: APIOAuthAccessToken, Err: ctx.Err()}
	}
}

// check refuses an answer not shaped as WeChat's; its errors name the
// field, never its value.
func (a *oauthAnswer) check() (*OAuthToken, error) {
	switch {
	case !ValidID(a.OpenID):
		return nil, errors.New("answer without a valid openid")
	case a.UnionID != "" && !ValidID(a.UnionID):
		return nil, errors.New("answer with an invalid unionid")
	case !validScope(a.Scope):
		return nil, errors.New("answer without a valid scope")
	case a.IsSnapshotUser != 0 && a.IsSnapshotUser != 1:
		return nil, errors.New("answer with an invalid is_snapshotuser")
	case !validOAuthToken(a.AccessToken):
		return nil, errors.New("answer without a valid access_token")
	case a.RefreshToken != "" && !validOAuthToken(a.RefreshToken):
		return nil, errors.New("answer with an invalid refresh_token")
	case a.ExpiresIn < 0:
		return nil, errors.New("answer with a negative expires_in")
	}
	return &OAuthToken{
		OpenID:       a.OpenID,
		UnionID:      a.UnionID,
		Scope:        a.Scope,
		Snapshot:     a.IsSnapshotUser == 1,
		ExpiresIn:    a.ExpiresIn,
		AccessToken:  a.AccessToken,
		RefreshToken: a.RefreshToken,
	}, nil
}

// HasScope reports whether WeChat granted scope (scopes are
// comma-separated).
func (t *OAuthToken) HasScope(scope string) bool {
	for s := t.Scope; s != ""; {
		var one string
		one, s, _ = strings.Cut(s, ",")
		if one == scope {
			return true
		}
	}
	return false
}

// validScope accepts one or more comma-separated scopes, each "snsapi_"
// and lower-case letters or '_', 64 characters in all at most.
func validScope(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for rest := s; rest != ""; {
		var one string
		var more bool
		one, rest, more = strings.Cut(rest, ",")
		if len(one) <= len("snsapi_") || !strings.HasPrefix(one, "snsapi_") {
			return false
		}
		for i := len("snsapi_"); i < len(one); i++ {
			if c := one[i]; !('a' <= c && c <= 'z' || c == '_') {
				return false
			}
		}
		if more && rest == "" {
			return false
		}
	}
	return true
}

// validOAuthToken accepts 1 to 512 printable ASCII characters that need no
// escaping in a query string beyond what url.Values does: no space,
// control byte or quote.
func validOAuthToken(s string) bool {
	if s == "" || len(s) > maxOAuthToken {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// OAuthUser is a sns/userinfo answer (scope snsapi_userinfo or
// snsapi_login): the profile the user agreed to share.
type OAuthUser struct {
	OpenID     string   `json:"openid"`
	UnionID    string   `json:"unionid,omitempty"`
	Nickname   string   `json:"nickname"`
	Sex        int      `json:"sex"`
	Province   string   `json:"province"`
	City       string   `json:"city"`
	Country    string   `json:"country"`
	HeadImgURL string   `json:"headimgurl"`
	Privilege  []string `json:"privilege"`
}

// OAuthUserInfo returns the profile of the user of an OAuth access token
// (scope snsapi_userinfo or snsapi_login). The openid answered must be the
// one asked for.
func (c *Client) OAuthUserInfo(ctx context.Context, t *OAuthToken) (*OAuthUser, error) {
	if t == nil || !validOAuthToken(t.AccessToken) || !ValidID(t.OpenID) {
		return nil, &UnavailableError{API: APIOAuthUserInfo, Err: errors.New("no usable OAuth access token")}
	}
	q := url.Values{"access_token": {t.AccessToken}, "openid": {t.OpenID}, "lang": {"zh_CN"}}
	var out struct {
		status
		OAuthUser
	}
	if err := c.call(ctx, APIOAuthUserInfo, http.MethodGet, "/sns/userinfo?"+q.Encode(), nil, &out); err != nil {
		return nil, err
	}
	switch {
	case out.OpenID != t.OpenID:
		return nil, &UnavailableError{API: APIOAuthUserInfo, Err: errors.New("answer for another openid")}
	case out.UnionID != "" && !ValidID(out.UnionID):
		return nil, &UnavailableError{API: APIOAuthUserInfo, Err: errors.New("answer with an invalid unionid")}
	}
	u := out.OAuthUser
	return &u, nil
}
