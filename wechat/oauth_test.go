package wechat_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/wechat"
	"github.com/caddy-wechat/wechatauth/wechattest"
)

const oauthToken = "ACCESS-tok3n-of-the-user-do-not-leak"

func TestOAuthAccessTokenReturnsTheUser(t *testing.T) {
	for _, scope := range []string{"snsapi_base", "snsapi_userinfo", "snsapi_login"} {
		t.Run(scope, func(t *testing.T) {
			e := newEnv(t, wechattest.Options{}, wechat.Config{})
			e.fake.AddWebCode(appID, "web-code", "alice", scope)
			tok, err := e.client.OAuthAccessToken(context.Background(), appID, "web-code")
			if err != nil {
				t.Fatal(err)
			}
			if tok.OpenID != wechattest.WebOpenID(appID, "alice") || tok.UnionID != wechattest.WebUnionID("alice") ||
				tok.Scope != scope || !tok.HasScope(scope) || tok.Snapshot || tok.AccessToken == "" || tok.ExpiresIn != 7200 {
				t.Fatalf("token %#v", tok)
			}
			if s := fmt.Sprintf("%v %+v %#v %s", tok, tok, tok, *tok); strings.Contains(s, tok.AccessToken) || strings.Contains(s, tok.RefreshToken) {
				t.Fatalf("printing the token shows its secrets: %s", s)
			}
			if _, err := e.client.OAuthAccessToken(context.Background(), appID, "web-code"); wechat.ErrcodeOf(err) != 40163 {
				t.Fatalf("second use: %v", err)
			}
		})
	}
}

func TestOAuthAccessTokenReadsSnapshotUsers(t *testing.T) {
	e := newEnv(t, wechattest.Options{}, wechat.Config{})
	e.fake.SetSnapshotUsers(true)
	e.fake.AddWebCode(appID, "c", "alice", "snsapi_base")
	tok, err := e.client.OAuthAccessToken(context.Background(), appID, "c")
	if err != nil || !tok.Snapshot {
		t.Fatalf("%v %v", tok, err)
	}
}

func TestOAuthAccessTokenKinds(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*wechattest.Server)
		kind  wechat.Kind
	}{
		{"unknown code", func(*wechattest.Server) {}, wechat.KindInvalidCode},
		{"used code", func(f *wechattest.Server) { f.FailNext(wechattest.PathOAuthAccessToken, 40163) }, wechat.KindInvalidCode},
		{"system error", func(f *wechattest.Server) { f.FailNext(wechattest.PathOAuthAccessToken, -1) }, wechat.KindUnavailable},
		{"rate limited", func(f *wechattest.Server) { f.FailNext(wechattest.PathOAuthAccessToken, 45011) }, wechat.KindRateLimited},
		{"bad secret", func(f *wechattest.Server) { f.FailNext(wechattest.PathOAuthAccessToken, 40125) }, wechat.KindConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, wechattest.Options{}, wechat.Config{})
			tt.setup(e.fake)
			_, err := e.client.OAuthAccessToken(context.Background(), appID, "the-code")
			var we *wechat.Error
			if !errors.As(err, &we) || we.Kind() != tt.kind || we.API != wechat.APIOAuthAccessToken {
				t.Fatalf("err %v, want kind %d", err, tt.kind)
			}
		})
	}
}

func TestOAuthAccessTokenOfAnotherAppIsAnInvalidCode(t *testing.T) {
	e := newEnv(t, wechattest.Options{}, wechat.Config{})
	e.fake.AddWebCode("wxother", "c", "alice", "snsapi_base")
	_, err := e.client.OAuthAccessToken(context.Background(), appID, "c")
	if wechat.ErrcodeOf(err) != 40029 {
		t.Fatalf("err %v", err)
	}
}

func TestOAuthAccessTokenRefusesUnknownApps(t *testing.T) {
	e := newEnv(t, wechattest.Options{}, wechat.Config{})
	if _, err := e.client.OAuthAccessToken(context.Background(), "wxnotconfigured", "c"); !errors.Is(err, wechat.ErrUnknownApp) {
		t.Fatalf("err %v", err)
	}
	if n := e.fake.Calls(wechattest.PathOAuthAccessToken); n != 0 {
		t.Fatalf("%d calls", n)
	}
}

func TestOAuthAccessTokenTreatsUnusableAnswersAsUnavailable(t *testing.T) {
	good := func(field, value string) string {
		m := map[string]string{
			"access_token": `"` + oauthToken + `"`, "expires_in": "7200", "refresh_token": `"r"`,
			"openid": `"oWeb1"`, "scope": `"snsapi_base"`,
		}
		if value == "" {
			delete(m, field)
		} else {
			m[field] = value
		}
		var parts []string
		for k, v := range m {
			parts = append(parts, `"`+k+`":`+v)
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	tests := []struct {
		name   string
		status int
		body   string
	}{
		{"HTML 502", http.StatusBadGateway, "<html>502</html>"},
		{"500 JSON", http.StatusInternalServerError, `{"errcode":-1}`},
		{"200 HTML", http.StatusOK, "<html>maintenance</html>"},
		{"200 empty", http.StatusOK, ""},
		{"redirect", http.StatusFound, ""},
		{"no openid", http.StatusOK, good("openid", "")},
		{"openid with CR LF", http.StatusOK, good("openid", `"o1\r\nX-WX-OPENID: victim"`)},
		{"openid too long", http.StatusOK, good("openid", `"`+strings.Repeat("o", 65)+`"`)},
		{"openid not a string", http.StatusOK, good("openid", `123`)},
		{"bad unionid", http.StatusOK, good("unionid", `"u 1"`)},
		{"no scope", http.StatusOK, good("scope", "")},
		{"odd scope", http.StatusOK, good("scope", `"admin"`)},
		{"scope with a trailing comma", http.StatusOK, good("scope", `"snsapi_base,"`)},
		{"scope with a space", http.StatusOK, good("scope", `"snsapi_base snsapi_userinfo"`)},
		{"is_snapshotuser 2", http.StatusOK, good("is_snapshotuser", `2`)},
		{"is_snapshotuser a string", http.StatusOK, good("is_snapshotuser", `"1"`)},
		{"no access_token", http.StatusOK, good("access_token", "")},
		{"access_token with a space", http.StatusOK, good("access_token", `"a b"`)},
		{"access_token too long", http.StatusOK, good("access_token", `"`+strings.Repeat("a", 513)+`"`)},
		{"negative expires_in", http.StatusOK, good("expires_in", `-1`)},
		// WeChat never gives a member twice: which copy counts would be a
		// guess (encoding/json keeps the last, names folded).
		{"openid twice", http.StatusOK, strings.TrimSuffix(good("openid", `"oWeb1"`), "}") + `,"openid":"oOther"}`},
		{"openid twice in another case", http.StatusOK, strings.TrimSuffix(good("openid", `"oWeb1"`), "}") + `,"OpenID":"oOther"}`},
		{"is_snapshotuser twice", http.StatusOK, strings.TrimSuffix(good("is_snapshotuser", `1`), "}") + `,"is_snapshotuser":0}`},
		{"unionid twice", http.StatusOK, strings.TrimSuffix(good("unionid", `"uWeb1"`), "}") + `,"unionid":"uOther"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := serveJSON(t, tt.status, tt.body).OAuthAccessToken(context.Background(), appID, "c")
			var ue *wechat.UnavailableError
			if !errors.As(err, &ue) || ue.API != wechat.APIOAuthAccessToken {
				t.Fatalf("err = %v (%T), want *wechat.UnavailableError", err, err)
			}
			if strings.Contains(err.Error(), oauthToken) {
				t.Fatalf("error shows the access token: %v", err)
			}
		})
	}
	// The good answer itself passes, so the cases above fail for their
	// one change.
	tok, err := serveJSON(t, 200, good("unionid", `"uWeb1"`)).OAuthAccessToken(context.Background(), appID, "c")
	if err != nil || tok.OpenID != "oWeb1" || tok.UnionID != "uWeb1" || tok.AccessToken != oauthToken {
		t.Fatalf("%v %v", tok, err)
	}
	tok, err = serveJSON(t, 200, good("scope", `"snsapi_base,snsapi_userinfo"`)).OAuthAccessToken(context.Background(), appID, "c")
	if err != nil || !tok.HasScope("snsapi_userinfo") || !tok.HasScope("snsapi_base") || tok.HasScope("snsapi_login") {
		t.Fatalf("%v %v", tok, err)
	}
}

func TestOAuthAccessTokenErrorsNeverContainSecretOrCode(t *testing.T) {
	const code = "C0DE-single-use-do-not-leak"
	for _, setup := range []func(*env){
		func(e *env) { e.fake.FailNext(wechattest.PathOAuthAccessToken, 40029) },
		func(e *env) {
			e.fake.FailNextHTTP(wechattest.PathOAuthAccessToken, 502, "<html>"+code+secret+"</html>")
		},
		func(e *env) { e.fake.DropNext(wechattest.PathOAuthAccessToken) },
		func(e *env) { e.fake.SetDelay(time.Minute) },
	} {
		e := newEnv(t, wechattest.Options{}, wechat.Config{Timeout: 100 * time.Millisecond})
		setup(e)
		_, err := e.client.OAuthAccessToken(context.Background(), appID, code)
		if err == nil {
			t.Fatal("no error")
		}
		if msg := err.Error(); strings.Contains(msg, code) || strings.Contains(msg, secret) {
			t.Fatalf("error shows a secret: %s", msg)
		}
	}
}

func TestOAuthAccessTokenNeverSendsACodeTwice(t *testing.T) {
	for name, setup := range map[string]func(*env){
		"502":     func(e *env) { e.fake.FailNextHTTP(wechattest.PathOAuthAccessToken, 502, "x") },
		"timeout": func(e *env) { e.fake.SetDelay(time.Minute) },
		"drop":    func(e *env) { e.fake.DropNext(wechattest.PathOAuthAccessToken) },
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, wechattest.Options{}, wechat.Config{Timeout: 100 * time.Millisecond})
			e.fake.AddWebCode(appID, "warm", "a", "snsapi_base")
			if _, err := e.client.OAuthAccessToken(context.Background(), appID, "warm"); err != nil {
				t.Fatal(err)
			}
			setup(e)
			if _, err := e.client.OAuthAccessToken(context.Background(), appID, "once"); err == nil {
				t.Fatal("no error")
			}
			if n := e.fake.Calls(wechattest.PathOAuthAccessToken); n != 2 {
				t.Fatalf("the code was sent %d times", n-1)
			}
		})
	}
}

// WeChat's browser sometimes loads the callback twice at once: one
// exchange, one answer for both.
func TestConcurrentOAuthExchangesOfOneCodeShareOneCall(t *testing.T) {
	e := newEnv(t, wechattest.Options{}, wechat.Config{})
	e.fake.AddWebCode(appID, "twice", "alice", "snsapi_base")
	e.fake.SetDelay(100 * time.Millisecond)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.client.OAuthAccessToken(context.Background(), appID, "twice")
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := e.fake.Calls(wechattest.PathOAuthAccessToken); n != 1 {
		t.Fatalf("%d calls", n)
	}
}

func TestOAuthUserInfo(t *testing.T) {
	e := newEnv(t, wechattest.Options{}, wechat.Config{})
	e.fake.AddWebCode(appID, "u", "alice", "snsapi_userinfo")
	e.fake.AddWebCode(appID, "b", "bob", "snsapi_base")
	tok, err := e.client.OAuthAccessToken(context.Background(), appID, "u")
	if err != nil {
		t.Fatal(err)
	}
	u, err := e.client.OAuthUserInfo(context.Background(), tok)
	if err != nil || u.OpenID != tok.OpenID || u.UnionID != tok.UnionID || u.Nickname == "" {
		t.Fatalf("%+v %v", u, err)
	}
	base, err := e.client.OAuthAccessToken(context.Background(), appID, "b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.OAuthUserInfo(context.Background(), base); wechat.ErrcodeOf(err) != wechattest.ErrAPIUnauthorized {
		t.Fatalf("snsapi_base: %v", err)
	} else if strings.Contains(err.Error(), base.AccessToken) {
		t.Fatal("error shows the token")
	}
	other := *tok
	other.OpenID = "oSomeoneElse"
	if _, err := e.client.OAuthUserInfo(context.Background(), &other); err == nil {
		t.Fatal("another openid accepted")
	}
	if _, err := e.client.OAuthUserInfo(context.Background(), nil); err == nil {
		t.Fatal("nil token accepted")
	}
	// An answer for another user is refused.
	c := serveJSON(t, 200, `{"openid":"oMallory","nickname":"m"}`)
	if _, err := c.OAuthUserInfo(context.Background(), tok); err == nil {
		t.Fatal("answer for another openid accepted")
	}
}
