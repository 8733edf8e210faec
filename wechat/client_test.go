package wechat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/wechat"
	"github.com/caddy-wechat/wechatauth/wechattest"
)

// Distinctive values, so a leak into an error message is easy to find.
const (
	appID  = "wxclienttest0001"
	secret = "S3CRET-0f-the-app-do-not-leak"
)

// clock is a settable time for the client and the fake alike.
type clock = wechattest.Clock

func newClock() *clock { return wechattest.NewClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)) }

type env struct {
	fake   *wechattest.Server
	srv    *httptest.Server
	client *wechat.Client
}

// newEnv serves a fake WeChat with one app over a real socket and returns a
// client for it. cfg may set Timeout, Now or Observe.
func newEnv(t *testing.T, opts wechattest.Options, cfg wechat.Config) *env {
	t.Helper()
	fake := wechattest.NewServer(opts)
	fake.AddApp(appID, secret)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	cfg.BaseURL = srv.URL
	if cfg.Apps == nil {
		cfg.Apps = map[string]string{appID: secret}
	}
	cfg.HTTPClient = srv.Client()
	return &env{fake: fake, srv: srv, client: wechat.New(cfg)}
}

// serveJSON returns a client whose WeChat answers every request with status
// and body.
func serveJSON(t *testing.T, status int, body string) *wechat.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return wechat.New(wechat.Config{BaseURL: srv.URL, Apps: map[string]string{appID: secret}, HTTPClient: srv.Client()})
}

func TestCode2SessionReturnsTheUser(t *testing.T) {
	tests := []struct {
		name string
		user wechattest.User
	}{
		{"with unionid", wechattest.User{OpenID: "oWithUnion00000000000000001", UnionID: "uUnion0000000000000000000001", SessionKey: wechattest.NewSessionKey()}},
		{"without unionid", wechattest.User{OpenID: "oNoUnion0000000000000000001", SessionKey: wechattest.NewSessionKey()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, wechattest.Options{}, wechat.Config{})
			e.fake.AddCode(appID, "code-1", tt.user)
			s, err := e.client.Code2Session(context.Background(), appID, "code-1")
			if err != nil {
				t.Fatal(err)
			}
			if s.OpenID != tt.user.OpenID || s.SessionKey != tt.user.SessionKey || s.UnionID != tt.user.UnionID {
				t.Fatalf("session %+v, want %+v", s, tt.user)
			}
		})
	}
}

func TestCode2SessionMapsErrcodes(t *testing.T) {
	for _, code := range []int{-1, 40029, 40163, 40226, 45011, 40013, 40125, 41002, 41004, 40164, 99999} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			e := newEnv(t, wechattest.Options{}, wechat.Config{})
			e.fake.AddErrorCode(appID, "the-code", code)
			_, err := e.client.Code2Session(context.Background(), appID, "the-code")
			var we *wechat.Error
			if !errors.As(err, &we) {
				t.Fatalf("err = %v (%T), want *wechat.Error", err, err)
			}
			if we.Code != code || we.API != wechat.APICode2Session || wechat.ErrcodeOf(err) != code {
				t.Fatalf("error %+v, want errcode %d of %s", we, code, wechat.APICode2Session)
			}
		})
	}
}

func TestCode2SessionReportsWeChatsOwnRefusals(t *testing.T) {
	tests := []struct {
		name    string
		apps    map[string]string
		appid   string
		setup   func(*wechattest.Server)
		errcode int
	}{
		{"wrong secret", map[string]string{appID: "not-the-secret"}, appID, nil, 40125},
		{"appid WeChat does not know", map[string]string{"wxunknown": secret}, "wxunknown", nil, 40013},
		{"empty secret", map[string]string{appID: ""}, appID, nil, 41004},
		{"unregistered code", nil, appID, nil, 40029},
		{"used code", nil, appID, func(f *wechattest.Server) {
			f.AddCode(appID, "the-code", wechattest.User{OpenID: "oUsed"})
			f.FailNext(wechattest.PathCode2Session, 40163)
		}, 40163},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, wechattest.Options{}, wechat.Config{Apps: tt.apps})
			if tt.setup != nil {
				tt.setup(e.fake)
			}
			_, err := e.client.Code2Session(context.Background(), tt.appid, "the-code")
			if got := wechat.ErrcodeOf(err); got != tt.errcode {
				t.Fatalf("errcode %d (%v), want %d", got, err, tt.errcode)
			}
		})
	}
}

func TestCode2SessionRefusesAppsWithoutSecret(t *testing.T) {
	e := newEnv(t, wechattest.Options{AutoCodes: true}, wechat.Config{})
	_, err := e.client.Code2Session(context.Background(), "wxnotconfigured", "code")
	if !errors.Is(err, wechat.ErrUnknownApp) {
		t.Fatalf("err = %v, want ErrUnknownApp", err)
	}
	if n := e.fake.Calls(wechattest.PathCode2Session); n != 0 {
		t.Fatalf("WeChat was called %d times for an app with no secret", n)
	}
}

func TestCode2SessionReadsWeChatsJSONLeniently(t *testing.T) {
	tests := []struct {
		name string
		body string
		want wechat.Session
	}{
		{"no errcode means success", `{"openid":"o1","session_key":"` + testKey + `"}`, wechat.Session{OpenID: "o1", SessionKey: testKey}},
		{"errcode 0 means success", `{"errcode":0,"errmsg":"ok","openid":"o1","session_key":"` + testKey + `","unionid":"u1"}`, wechat.Session{OpenID: "o1", SessionKey: testKey, UnionID: "u1"}},
		{"unknown fields ignored", `{"openid":"o1","session_key":"` + testKey + `","brand_new":{"nested":[1,2,3]},"flag":true}`, wechat.Session{OpenID: "o1", SessionKey: testKey}},
		{"28-character openid of WeChat's alphabet", `{"openid":"oAbc-_0123456789abcdefghijkl","session_key":"` + testKey + `"}`, wechat.Session{OpenID: "oAbc-_0123456789abcdefghijkl", SessionKey: testKey}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := serveJSON(t, http.StatusOK, tt.body).Code2Session(context.Background(), appID, "c")
			if err != nil {
				t.Fatal(err)
			}
			if *s != tt.want {
				t.Fatalf("session %+v, want %+v", *s, tt.want)
			}
		})
	}
}

// testKey is a session_key shaped as WeChat's: base64 of 16 bytes.
const testKey = "q83vEjRWeJCrze8SNFZ4kA=="

// A 302 from api_base is never followed: the answer at the other end, good
// as it may look, is not WeChat's.
func TestCode2SessionNeverFollowsARedirect(t *testing.T) {
	var followed int
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		followed++
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"openid":"oRedirected","session_key":"`+testKey+`"}`)
	}))
	t.Cleanup(good.Close)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, good.URL+r.URL.RequestURI(), http.StatusFound)
	}))
	t.Cleanup(redirector.Close)
	c := wechat.New(wechat.Config{BaseURL: redirector.URL, Apps: map[string]string{appID: secret}, HTTPClient: &http.Client{}})
	s, err := c.Code2Session(context.Background(), appID, "c")
	var ue *wechat.UnavailableError
	if !errors.As(err, &ue) {
		t.Fatalf("a redirected login gave %+v, %v; want *wechat.UnavailableError", s, err)
	}
	if followed != 0 {
		t.Fatalf("the redirect was followed %d times (the secret and code went elsewhere)", followed)
	}
}

func TestCode2SessionTreatsUnusableAnswersAsUnavailable(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
	}{
		{"HTML 502 from a gateway", http.StatusBadGateway, "<html><body><h1>502 Bad Gateway</h1></body></html>"},
		{"500 with JSON", http.StatusInternalServerError, `{"errcode":-1,"errmsg":"system error"}`},
		{"503 empty", http.StatusServiceUnavailable, ""},
		{"200 HTML", http.StatusOK, "<html>maintenance</html>"},
		{"200 empty body", http.StatusOK, ""},
		{"200 truncated JSON", http.StatusOK, `{"openid":"o1","sess`},
		{"200 JSON array", http.StatusOK, `[1,2]`},
		{"200 without openid", http.StatusOK, `{"session_key":"k1"}`},
		{"200 without session_key", http.StatusOK, `{"openid":"o1"}`},
		{"redirect", http.StatusFound, ""},
		{"openid with CR LF", http.StatusOK, `{"openid":"o1\r\nX-WX-OPENID: victim","session_key":"` + testKey + `"}`},
		{"openid of 200 KB", http.StatusOK, `{"openid":"` + strings.Repeat("o", 200<<10) + `","session_key":"` + testKey + `"}`},
		{"openid of 65 characters", http.StatusOK, `{"openid":"` + strings.Repeat("o", 65) + `","session_key":"` + testKey + `"}`},
		{"openid with a space", http.StatusOK, `{"openid":"o 1","session_key":"` + testKey + `"}`},
		{"unionid with a quote", http.StatusOK, `{"openid":"o1","unionid":"u\"1","session_key":"` + testKey + `"}`},
		{"session_key not base64", http.StatusOK, `{"openid":"o1","session_key":"k1"}`},
		{"session_key of 15 bytes", http.StatusOK, `{"openid":"o1","session_key":"AAAAAAAAAAAAAAAAAAAA"}`},
		{"session_key of 32 bytes", http.StatusOK, `{"openid":"o1","session_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`},
		{"openid twice", http.StatusOK, `{"openid":"o1","session_key":"` + testKey + `","openid":"o2"}`},
		{"session_key twice in another case", http.StatusOK, `{"openid":"o1","session_key":"` + testKey + `","Session_Key":"` + testKey + `"}`},
		{"a nested member twice", http.StatusOK, `{"openid":"o1","session_key":"` + testKey + `","extra":{"a":1,"a":2}}`},
		// encoding/json matches "\u212a" (the Kelvin sign K) to k.
		{"session_key twice, once with the Kelvin sign", http.StatusOK, `{"openid":"o1","session_key":"` + testKey + `","session_\u212aey":"` + testKey + `"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := serveJSON(t, tt.status, tt.body).Code2Session(context.Background(), appID, "c")
			var ue *wechat.UnavailableError
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v (%T), want *wechat.UnavailableError", err, err)
			}
			if wechat.ErrcodeOf(err) != 0 {
				t.Fatalf("an unusable answer carries errcode %d", wechat.ErrcodeOf(err))
			}
		})
	}
}

func TestCode2SessionHonoursTimeout(t *testing.T) {
	e := newEnv(t, wechattest.Options{AutoCodes: true}, wechat.Config{Timeout: 50 * time.Millisecond})
	e.fake.SetDelay(time.Minute)
	start := time.Now()
	_, err := e.client.Code2Session(context.Background(), appID, "slow-code")
	var ue *wechat.UnavailableError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v, want *wechat.UnavailableError", err)
	}
	// The fake would answer after a minute; anything near that means the
	// timeout was ignored.
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("gave up after %v with a 50ms timeout", d)
	}
	if n := e.fake.Calls(wechattest.PathCode2Session); n != 1 {
		t.Fatalf("the code was sent %d times; a code is never retried", n)
	}
}

func TestCode2SessionHonoursCallerCancel(t *testing.T) {
	e := newEnv(t, wechattest.Options{AutoCodes: true}, wechat.Config{})
	e.fake.SetDelay(time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.client.Code2Session(ctx, appID, "code")
	var ue *wechat.UnavailableError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v, want *wechat.UnavailableError", err)
	}
}

func TestCode2SessionNeverSendsACodeTwice(t *testing.T) {
	tests := []struct {
		name  string
		setup func(e *env)
	}{
		{"after an HTML 502", func(e *env) {
			e.fake.FailNextHTTP(wechattest.PathCode2Session, http.StatusBadGateway, "<html>502</html>")
		}},
		{"after a 500", func(e *env) { e.fake.FailNextHTTP(wechattest.PathCode2Session, http.StatusInternalServerError, "") }},
		{"after a non-JSON 200", func(e *env) { e.fake.FailNextHTTP(wechattest.PathCode2Session, http.StatusOK, "oops") }},
		{"after errcode -1", func(e *env) { e.fake.FailNext(wechattest.PathCode2Session, -1) }},
		{"after a timeout", func(e *env) { e.fake.SetDelay(time.Minute) }},
		// net/http re-sends an idempotent request by itself when a reused
		// keep-alive connection closes before the answer; a GET is
		// idempotent, a login code is not.
		{"after the connection drops", func(e *env) { e.fake.DropNext(wechattest.PathCode2Session) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, wechattest.Options{AutoCodes: true}, wechat.Config{Timeout: 100 * time.Millisecond})
			// A first login leaves a keep-alive connection to reuse.
			if _, err := e.client.Code2Session(context.Background(), appID, "warm-up"); err != nil {
				t.Fatal(err)
			}
			tt.setup(e)
			if _, err := e.client.Code2Session(context.Background(), appID, "once"); err == nil {
				t.Fatal("no error")
			}
			if n := e.fake.Calls(wechattest.PathCode2Session); n != 2 {
				t.Fatalf("the code was sent %d times", n-1)
			}
		})
	}
}

func TestErrorsNeverContainSecretOrCode(t *testing.T) {
	const code = "C0DE-single-use-do-not-leak"
	tests := []struct {
		name  string
		setup func(t *testing.T) *wechat.Client
	}{
		{"errcode answer", func(t *testing.T) *wechat.Client {
			e := newEnv(t, wechattest.Options{}, wechat.Config{})
			e.fake.AddErrorCode(appID, code, 40029)
			return e.client
		}},
		{"errmsg quotes the request URL", func(t *testing.T) *wechat.Client {
			e := newEnv(t, wechattest.Options{}, wechat.Config{})
			e.fake.HostileNext(wechattest.PathCode2Session, wechattest.EchoJSON)
			return e.client
		}},
		{"wrong secret", func(t *testing.T) *wechat.Client {
			return newEnv(t, wechattest.Options{}, wechat.Config{Apps: map[string]string{appID: secret + "x"}}).client
		}},
		{"HTML 502", func(t *testing.T) *wechat.Client {
			e := newEnv(t, wechattest.Options{}, wechat.Config{})
			e.fake.FailNextHTTP(wechattest.PathCode2Session, 502, "<html>"+code+"</html>")
			return e.client
		}},
		{"timeout", func(t *testing.T) *wechat.Client {
			e := newEnv(t, wechattest.Options{}, wechat.Config{Timeout: 20 * time.Millisecond})
			e.fake.SetDelay(time.Minute)
			return e.client
		}},
		{"connection refused", func(t *testing.T) *wechat.Client {
			srv := httptest.NewServer(http.NotFoundHandler())
			url := srv.URL
			srv.Close()
			return wechat.New(wechat.Config{BaseURL: url, Apps: map[string]string{appID: secret}})
		}},
		{"unresolvable host", func(t *testing.T) *wechat.Client {
			return wechat.New(wechat.Config{BaseURL: "http://wechat.invalid", Apps: map[string]string{appID: secret}, Timeout: time.Second})
		}},
		{"malformed api_base", func(t *testing.T) *wechat.Client {
			return wechat.New(wechat.Config{BaseURL: "http://[::1", Apps: map[string]string{appID: secret}})
		}},
		{"redirect loop", func(t *testing.T) *wechat.Client {
			var srv *httptest.Server
			srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, srv.URL+r.URL.RequestURI(), http.StatusFound)
			}))
			t.Cleanup(srv.Close)
			return wechat.New(wechat.Config{BaseURL: srv.URL, Apps: map[string]string{appID: secret}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.setup(t)
			_, err := c.Code2Session(context.Background(), appID, code)
			if err == nil {
				t.Fatal("no error")
			}
			for _, leak := range []string{secret, code, "js_code", "secret="} {
				if strings.Contains(err.Error(), leak) {
					t.Fatalf("error %q contains %q", err.Error(), leak)
				}
			}
		})
	}
}

func TestAccessTokenErrorQuotingTheBodyHoldsNoSecret(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		json.NewEncoder(w).Encode(map[string]any{"errcode": 47001, "errmsg": "data format error hint: [" + string(b) + "]"})
	}))
	t.Cleanup(srv.Close)
	c := wechat.New(wechat.Config{BaseURL: srv.URL, Apps: map[string]string{appID: secret}})
	_, err := c.AccessToken(context.Background(), appID)
	if wechat.ErrcodeOf(err) != 47001 || strings.Contains(err.Error(), secret) {
		t.Fatalf("err = %v, want errcode 47001 without the secret", err)
	}
}

// An errmsg that quotes a secret cut short, or a piece of its middle,
// gives most of it away: it is withheld as the whole value would be. One
// that shares only a word with a request value is kept.
func TestErrmsgQuotingPartOfTheRequestIsWithheld(t *testing.T) {
	const code = "0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d"
	tests := []struct {
		name, errmsg string
		kept         bool
	}{
		{"the secret less its last character", "system error for appsecret " + secret[:len(secret)-1], false},
		{"the secret's middle", "bad [" + secret[4:22] + "]", false},
		{"the code's first 20 characters", "invalid code " + code[:20] + "...", false},
		{"the code's last 16 characters", "rejected ..." + code[16:], false},
		{"a word of a value", "invalid authorization, rid: 6571c2a0", true},
		{"15 characters of the code", "near " + code[:15] + " rid: 1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				json.NewEncoder(w).Encode(map[string]any{"errcode": -1, "errmsg": tt.errmsg})
			}))
			t.Cleanup(srv.Close)
			c := wechat.New(wechat.Config{BaseURL: srv.URL, Apps: map[string]string{appID: secret}})
			_, err := c.Code2Session(context.Background(), appID, code)
			if wechat.ErrcodeOf(err) != -1 {
				t.Fatalf("err = %v, want errcode -1", err)
			}
			if got := strings.Contains(err.Error(), tt.errmsg); got != tt.kept {
				t.Fatalf("err = %q; errmsg kept: %v, want %v", err, got, tt.kept)
			}
		})
	}
}

func TestPlainErrmsgIsKept(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"errcode":40029,"errmsg":"invalid code, rid: 6571c2a0-1\n2"}`))
	}))
	t.Cleanup(srv.Close)
	c := wechat.New(wechat.Config{BaseURL: srv.URL, Apps: map[string]string{appID: secret}})
	_, err := c.Code2Session(context.Background(), appID, "some-code")
	if err == nil || !strings.HasSuffix(err.Error(), "invalid code, rid: 6571c2a0-1 2") {
		t.Fatalf("err = %v, want WeChat's errmsg with its newline made a space", err)
	}
}

func TestAccessTokenErrorsNeverContainSecret(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c := wechat.New(wechat.Config{BaseURL: url, Apps: map[string]string{appID: secret}})
	_, err := c.PhoneNumber(context.Background(), appID, "phone-123", "o1")
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("err = %v", err)
	}
	e := newEnv(t, wechattest.Options{}, wechat.Config{Apps: map[string]string{appID: secret + "x"}})
	_, err = e.client.AccessToken(context.Background(), appID)
	if wechat.ErrcodeOf(err) != 40125 || strings.Contains(err.Error(), secret) {
		t.Fatalf("err = %v, want errcode 40125 without the secret", err)
	}
}

// waitBlockedInCode2Session waits until n goroutines wait in Code2Session
// for a shared WeChat call, so the test knows every caller has joined it.
func waitBlockedInCode2Session(t *testing.T, n int) {
	t.Helper()
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(30 * time.Second)
	for {
		stacks := string(buf[:runtime.Stack(buf, true)])
		blocked := 0
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, "[select") && strings.Contains(g, "wechat.(*Client).Code2Session(") {
				blocked++
			}
		}
		if blocked >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d callers reached Code2Session", blocked, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestConcurrentLoginsWithOneCodeShareOneCall(t *testing.T) {
	fake := wechattest.NewServer(wechattest.Options{})
	fake.AddApp(appID, secret)
	user := fake.AddCode(appID, "shared-code", wechattest.User{OpenID: "oShared000000000000000000001"})
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c := wechat.New(wechat.Config{BaseURL: srv.URL, Apps: map[string]string{appID: secret}, HTTPClient: srv.Client()})

	const n = 16
	var wg sync.WaitGroup
	results := make([]*wechat.Session, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = c.Code2Session(context.Background(), appID, "shared-code")
		}()
	}
	waitBlockedInCode2Session(t, n)
	close(release)
	wg.Wait()

	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if results[i].OpenID != user.OpenID || results[i].SessionKey != user.SessionKey {
			t.Fatalf("caller %d got %+v", i, results[i])
		}
	}
	if got := fake.Calls(wechattest.PathCode2Session); got != 1 {
		t.Fatalf("%d concurrent logins with one code made %d WeChat calls, want 1", n, got)
	}
	// Each caller owns its copy.
	results[0].OpenID = "changed"
	if results[1].OpenID != user.OpenID {
		t.Fatal("callers share one Session value")
	}
}

func TestObserverSeesEveryCall(t *testing.T) {
	type call struct{ api, result string }
	var mu sync.Mutex
	var calls []call
	obs := func(api, result string, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, call{api, result})
	}
	e := newEnv(t, wechattest.Options{AutoCodes: true}, wechat.Config{Observe: obs})
	ctx := context.Background()
	e.client.Code2Session(ctx, appID, "ok-code")
	e.client.Code2Session(ctx, appID, "errcode-40163")
	e.client.Code2Session(ctx, appID, "errcode-98765") // undocumented: one label for all such
	e.fake.FailNextHTTP(wechattest.PathCode2Session, 502, "")
	e.client.Code2Session(ctx, appID, "third")
	e.client.PhoneNumber(ctx, appID, "phone-13800138000", "")
	want := []call{
		{wechat.APICode2Session, "ok"},
		{wechat.APICode2Session, "40163"},
		{wechat.APICode2Session, "other"},
		{wechat.APICode2Session, "unavailable"},
		{wechat.APIStableToken, "ok"},
		{wechat.APIPhoneNumber, "ok"},
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Fatalf("observed %v, want %v", calls, want)
	}
}
