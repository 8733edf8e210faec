package caddytest

// Acceptance points of issue 4 covered here, with two Caddy processes, a
// real redis-server and one file_system storage, and no signing_key:
//   - a token issued by A is accepted by B; a session created on A decrypts
//     WeChat's test vector on B;
//   - a logout on B is honoured by A within 1 s, and still after B restarts;
//   - after A restarts its earlier tokens work and their sessions decrypt; a
//     token not revoked keeps working on B after B restarts;
//   - no value in Redis holds a session_key in the clear;
//   - 50 proxied requests cause fewer than 10 Redis commands;
//   - with Redis hung (SIGSTOP) and stopped: a proxied request answers 200
//     in under 200 ms, a login 503 store_unavailable in under 2 s, a logout
//     503 yet honoured on that instance; logins work again within seconds
//     after SIGCONT or a restart.

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

// rdsSite is a site body with wechat_auth on Redis, and no signing_key.
func rdsSite(redisURL, wechatURL, upstreamAddr string) string {
	return usrSite(wechatURL, upstreamAddr, "\t\tstore redis "+redisURL)
}

// rdsVectorCode registers a login code for the user of WeChat's decryption
// vector, whose session_key decrypts the vector.
func rdsVectorCode(fake *wechattest.Server, code string) {
	v := wechattest.UserInfoVector
	fake.AddCode(testAppID, code, wechattest.User{OpenID: v.OpenID, UnionID: v.UnionID, SessionKey: v.SessionKey})
}

// rdsWantVectorDecrypts posts the vector to base's /wx/userinfo with token
// and requires its plaintext back.
func rdsWantVectorDecrypts(t *testing.T, base, token string) {
	t.Helper()
	v := wechattest.UserInfoVector
	r := postJSON(t, base+"/wx/userinfo", token, map[string]string{"encryptedData": v.EncryptedData, "iv": v.IV})
	wantStatus(t, r, http.StatusOK)
	if !jsonEqual(t, r.Body, []byte(v.Plaintext)) {
		t.Errorf("%s decrypted %s, want %s", base, r.Body, v.Plaintext)
	}
}

// rdsWantProxied requires a proxied request with token to reach the
// upstream as the vector's user.
func rdsWantProxied(t *testing.T, base, token string) {
	t.Helper()
	r := get(t, base+"/api/orders", token)
	wantStatus(t, r, http.StatusOK)
	if got := r.Seen(t).Header.Get("X-WX-OPENID"); got != wechattest.UserInfoVector.OpenID {
		t.Errorf("upstream saw X-WX-OPENID %q, want the vector's openid", got)
	}
}

// rdsWantRefusedWithin polls base with token until it answers 401
// invalid_token, for up to d (a logout made on another instance), and
// returns how long that took.
func rdsWantRefusedWithin(t *testing.T, base, token string, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		r := get(t, base+"/api/orders", token)
		if r.Status == http.StatusUnauthorized {
			wantError(t, r, http.StatusUnauthorized, "invalid_token")
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("%s still accepts the token %v after the logout on another instance: %d", base, d, r.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRedisTwoInstancesShareTokensSessionsAndLogouts(t *testing.T) {
	srv := rdsStart(t)
	fake, wechatURL := startWeChat(t, wechattest.Options{})
	fake.AddApp(testAppID, testSecret)
	up := startUpstream(t)
	global := "\tstorage file_system " + t.TempDir()
	site := rdsSite(srv.URL, wechatURL, up.Addr)
	// Caddy creates its local CA in the storage at first start too, and two
	// processes doing that at once race on its files (Caddy's matter, not
	// this module's): let one Caddy without wechat_auth create it first.
	ca := multiNew(t, "CA", global, "\trespond ok")
	ca.Start()
	ca.Stop()
	a, b := multiNew(t, "A", global, site), multiNew(t, "B", global, site)
	// Both start at once with no signing key in the storage: they must
	// agree on the one generated.
	multiStartAll(t, a, b)

	rdsVectorCode(fake, "code-1")
	kept := loginAt(t, a.Base, map[string]string{"code": "code-1"})
	if r := get(t, b.Base+"/api/orders", kept.Token); r.Status != http.StatusOK {
		t.Fatalf("B refuses a token from A (%d %s): the instances do not share the generated signing key", r.Status, r.Body)
	}
	rdsWantProxied(t, b.Base, kept.Token)
	rdsWantVectorDecrypts(t, b.Base, kept.Token)

	c := srv.Client()
	defer c.Close()
	t.Run("no session_key in the clear in Redis", func(t *testing.T) {
		dump := rdsDump(t, c)
		if !bytes.Contains(dump, []byte(wechattest.UserInfoVector.OpenID)) {
			t.Fatal("the session is not in Redis")
		}
		raw, _ := base64.StdEncoding.DecodeString(wechattest.UserInfoVector.SessionKey)
		if bytes.Contains(dump, []byte(wechattest.UserInfoVector.SessionKey)) || bytes.Contains(dump, raw) {
			t.Error("Redis holds the session_key in the clear")
		}
	})

	t.Run("50 proxied requests make fewer than 10 Redis commands", func(t *testing.T) {
		before := rdsCommandCount(t, c)
		for i := range 50 {
			base := a.Base
			if i%2 == 1 {
				base = b.Base
			}
			r := get(t, base+"/api/orders/"+strconv.Itoa(i), kept.Token)
			wantStatus(t, r, http.StatusOK)
		}
		if n := rdsCommandCount(t, c) - before; n >= 10 {
			t.Errorf("50 proxied requests made %d Redis commands", n)
		}
	})

	rdsVectorCode(fake, "code-2")
	gone := loginAt(t, a.Base, map[string]string{"code": "code-2"})
	rdsWantProxied(t, a.Base, gone.Token)
	t.Run("a logout on B is honoured by A within 1 s", func(t *testing.T) {
		r := send(t, http.MethodPost, b.Base+"/wx/logout", bearer(gone.Token), "")
		wantStatus(t, r, http.StatusNoContent)
		rdsWantRefusedWithin(t, a.Base, gone.Token, time.Second)
	})

	b.Restart()
	t.Run("after B restarts", func(t *testing.T) {
		wantError(t, get(t, b.Base+"/api/orders", gone.Token), http.StatusUnauthorized, "invalid_token")
		wantError(t, send(t, http.MethodPost, b.Base+"/wx/refresh", bearer(gone.Token), ""), http.StatusUnauthorized, "invalid_token")
		rdsWantProxied(t, b.Base, kept.Token)
		rdsWantVectorDecrypts(t, b.Base, kept.Token)
	})

	a.Restart()
	t.Run("after A restarts", func(t *testing.T) {
		rdsWantProxied(t, a.Base, kept.Token)
		rdsWantVectorDecrypts(t, a.Base, kept.Token)
		wantError(t, get(t, a.Base+"/api/orders", gone.Token), http.StatusUnauthorized, "invalid_token")
		// A token refreshed on A keeps the session on B.
		r := send(t, http.MethodPost, a.Base+"/wx/refresh", bearer(kept.Token), "")
		wantStatus(t, r, http.StatusOK)
		rdsWantVectorDecrypts(t, b.Base, r.Object(t)["token"].(string))
	})
}

func TestRedisOutageSparesProxiedRequestsAndFailsLoginsFast(t *testing.T) {
	srv := rdsStart(t)
	fake, wechatURL := startWeChat(t, wechattest.Options{AutoCodes: true})
	fake.AddApp(testAppID, testSecret)
	up := startUpstream(t)
	a := multiNew(t, "A", "\tstorage file_system "+t.TempDir(), rdsSite(srv.URL, wechatURL, up.Addr))
	a.Start()

	var codes atomic.Int64
	login := func() *reply {
		return postJSON(t, a.Base+"/wx/login", "", map[string]string{"code": "auto-" + strconv.FormatInt(codes.Add(1), 10)})
	}
	timed := func(name string, limit time.Duration, f func() *reply) *reply {
		t.Helper()
		start := time.Now()
		r := f()
		if d := time.Since(start); d >= limit {
			t.Errorf("%s took %v, want under %v", name, d, limit)
		}
		return r
	}

	for _, tc := range []struct {
		name       string
		down, back func(*rdsServer)
	}{
		{"hung", (*rdsServer).Pause, (*rdsServer).Resume},
		{"stopped", (*rdsServer).Stop, (*rdsServer).Start},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := login()
			wantStatus(t, r, http.StatusOK)
			user := r.Object(t)["token"].(string)
			r = login()
			wantStatus(t, r, http.StatusOK)
			leaving := r.Object(t)["token"].(string)

			tc.down(srv)
			defer tc.back(srv)
			took := getTimes(t, 5, func(i int) string { return a.Base + "/api/" + strconv.Itoa(i) }, user)
			wantFast(t, "proxied requests with Redis "+tc.name, took, 200*time.Millisecond)
			r = timed("a login", 2*time.Second, login)
			wantError(t, r, http.StatusServiceUnavailable, "store_unavailable")
			if r.Header.Get("Retry-After") == "" {
				t.Error("503 store_unavailable without Retry-After")
			}
			r = timed("a logout", 2*time.Second, func() *reply {
				return send(t, http.MethodPost, a.Base+"/wx/logout", bearer(leaving), "")
			})
			wantError(t, r, http.StatusServiceUnavailable, "store_unavailable")
			wantError(t, get(t, a.Base+"/api/x", leaving), http.StatusUnauthorized, "invalid_token")

			tc.back(srv)
			back := time.Now()
			for {
				r := login()
				if r.Status == http.StatusOK {
					t.Logf("logins work again %v after Redis is back", time.Since(back).Round(time.Millisecond))
					break
				}
				if time.Since(back) > 10*time.Second {
					t.Fatalf("logins still fail 10 s after Redis is back: %d %s", r.Status, r.Body)
				}
				time.Sleep(100 * time.Millisecond)
			}
			wantStatus(t, get(t, a.Base+"/api/x", user), http.StatusOK)
			wantError(t, get(t, a.Base+"/api/x", leaving), http.StatusUnauthorized, "invalid_token")
		})
	}
}
