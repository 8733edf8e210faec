// Package platform is the seam between the routes and a mini-program
// platform: the small Platform interface the login and phone routes call,
// with optional capabilities found by type assertion, and WeChat, its one
// implementation today. It also holds a handler's connection to WeChat: the
// API client with the process's shared access-token cache of each app, and
// the in-process fake of sandbox mode, both kept in usage pools across
// config reloads.
package platform

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-wechat/wechatauth/internal/metrics"
	"github.com/caddy-wechat/wechatauth/wechat"
	"github.com/caddy-wechat/wechatauth/wechattest"
)

// tokenCaches holds each app's access token across config reloads and for
// every handler of the process (wechat_auth's phone route and the
// wechat_api gateway alike): a reload would otherwise cost a stable_token
// call per app, and two caches of one app would each fetch their own.
var tokenCaches = caddy.NewUsagePool()

// sandboxFakes holds the one in-process fake WeChat of sandbox mode, so
// that its tokens and users outlive a reload and every sandbox handler of
// the process talks to the same fake.
var sandboxFakes = caddy.NewUsagePool()

const sandboxFakeKey = "sandbox"

type pooledTokenCache struct{ *wechat.TokenCache }

func (pooledTokenCache) Destruct() error { return nil }

type pooledFake struct{ *wechattest.Server }

func (pooledFake) Destruct() error { return nil }

// Conn is a handler's hold on WeChat: the client, the fake in
// sandbox mode, and what Cleanup must release.
type Conn struct {
	Client    *wechat.Client
	Fake      *wechattest.Server // sandbox only
	transport *http.Transport    // to WeChat; its idle connections close with the config
	tokenKeys []string           // in tokenCaches
}

// Settings configure a Conn.
type Settings struct {
	Base    string            // api_base; "" for WeChat's
	Secrets map[string]string // appid → secret, resolved
	Timeout time.Duration
	Sandbox bool
}

// Open makes the WeChat client of a handler, with the process's
// shared token cache of each app.
func Open(s Settings) (*Conn, error) {
	c := new(Conn)
	cfg := wechat.Config{
		BaseURL: s.Base,
		Apps:    s.Secrets,
		Timeout: s.Timeout,
		Observe: metrics.ObserveWeChat,
		Tokens:  make(map[string]*wechat.TokenCache, len(s.Secrets)),
	}
	if s.Sandbox {
		val, _, err := sandboxFakes.LoadOrNew(sandboxFakeKey, func() (caddy.Destructor, error) {
			return pooledFake{wechattest.NewServer(wechattest.Options{AutoCodes: true, ReusableCodes: true, UnionID: true})}, nil
		})
		if err != nil {
			return nil, err
		}
		c.Fake = val.(pooledFake).Server
		for appid, secret := range s.Secrets {
			c.Fake.AddApp(appid, secret)
		}
		cfg.HTTPClient = c.Fake.Client()
	} else {
		c.transport = &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 5 * time.Second,
		}
		cfg.HTTPClient = &http.Client{Transport: c.transport}
	}
	for appid, secret := range s.Secrets {
		key := TokenCacheKey(s.Base, s.Sandbox, appid, secret)
		val, _, err := tokenCaches.LoadOrNew(key, func() (caddy.Destructor, error) {
			return pooledTokenCache{wechat.NewTokenCache()}, nil
		})
		if err != nil {
			c.Close()
			return nil, err
		}
		c.tokenKeys = append(c.tokenKeys, key)
		cfg.Tokens[appid] = val.(pooledTokenCache).TokenCache
	}
	c.Client = wechat.New(cfg)
	return c, nil
}

// TokenCacheKey names an app's token cache: one per WeChat endpoint, app
// and secret (a new secret must not use a token fetched with the old one).
// The secret enters only as a hash.
func TokenCacheKey(base string, sandbox bool, appid, secret string) string {
	if sandbox {
		base = "sandbox"
	} else if base = strings.TrimRight(base, "/"); base == "" {
		base = wechat.DefaultBaseURL
	}
	sum := sha256.Sum256([]byte(secret))
	return base + "\x00" + appid + "\x00" + hex.EncodeToString(sum[:8])
}

// Close releases the hold; the token caches stay while another config
// holds them.
func (c *Conn) Close() {
	if c == nil {
		return
	}
	if c.transport != nil {
		c.transport.CloseIdleConnections()
	}
	for _, key := range c.tokenKeys {
		tokenCaches.Delete(key)
	}
	c.tokenKeys = nil
	if c.Fake != nil {
		sandboxFakes.Delete(sandboxFakeKey)
		c.Fake = nil
	}
}

// WeChat is the WeChat platform: logins by code2session, phone numbers by
// getuserphonenumber. Its errors are the wechat package's, unchanged.
type WeChat struct{ Client *wechat.Client }

// Login exchanges a wx.login code.
func (p WeChat) Login(ctx context.Context, appid, code string) (Login, error) {
	s, err := p.Client.Code2Session(ctx, appid, code)
	if err != nil {
		return Login{}, err
	}
	return Login{OpenID: s.OpenID, UnionID: s.UnionID, SessionKey: s.SessionKey}, nil
}

// PhoneNumber exchanges a phone-button code.
func (p WeChat) PhoneNumber(ctx context.Context, appid, code, openid string) (Phone, error) {
	info, err := p.Client.PhoneNumber(ctx, appid, code, openid)
	if err != nil {
		return Phone{}, err
	}
	return Phone(*info), nil
}

// WebLogin exchanges the code of a web authorization
// (sns/oauth2/access_token). An Official Account's answer may leave the
// unionid out (a user who does not follow the account); when the grant
// is snsapi_userinfo, the unionid is asked of sns/userinfo, and a failure
// of that call fails the login rather than give a session without the id
// that links the user's apps. A website app's QR login (snsapi_login)
// answers the unionid whenever the app is bound, so it is not asked
// again. The user's OAuth access and refresh tokens are dropped here.
func (p WeChat) WebLogin(ctx context.Context, appid, code string) (WebLogin, error) {
	t, err := p.Client.OAuthAccessToken(ctx, appid, code)
	if err != nil {
		return WebLogin{}, err
	}
	who := WebLogin{OpenID: t.OpenID, UnionID: t.UnionID, Snapshot: t.Snapshot}
	if who.UnionID == "" && !who.Snapshot && t.HasScope("snsapi_userinfo") {
		u, err := p.Client.OAuthUserInfo(ctx, t)
		if err != nil {
			return WebLogin{}, err
		}
		who.UnionID = u.UnionID
	}
	return who, nil
}

// Interface guards
var (
	_ Platform      = WeChat{}
	_ Phoner        = WeChat{}
	_ WebAuthorizer = WeChat{}
)
