package caddytest

// Acceptance of issue 14, users and generated keys, with Caddy processes
// (multiCaddy) on one real redis-server:
//   - key_rotation: two instances sharing Caddy's storage and Redis rotate
//     a generated key; a token of the older key keeps working on both, a
//     token of the newer key works on the instance that did not make it;
//     50 concurrent refreshes of one token over both instances all answer
//     200 and keep the session;
//   - admin API on A: a user revocation refuses every earlier token of the
//     user on A and B within 1 s, other users untouched, a new login works
//     at once; a ban made on B makes logins answer 403 user_blocked on A
//     within 1 s, is listed, survives a restart, and lifting it on A lets
//     the user log in; bad input is 400, an unknown appid 404;
//     a ban made on A while Redis is down answers 503 and reaches B by
//     itself once Redis is back;
//   - memory store: a ban survives a restart (Caddy's storage).

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

// usrSite is a wechat_auth site body with extra directive lines.
func usrSite(wechatURL, upstreamAddr, directive string) string {
	return fmt.Sprintf(`	wechat_auth {
		app_id %s
		app_secret %s
		api_base %s
		timeout %s
%s
	}
	reverse_proxy %s`, testAppID, testSecret, wechatURL, testTimeout, directive, upstreamAddr)
}

// usrAdmin sends a JSON body to an admin route of m.
func usrAdmin(t *testing.T, m *multiCaddy, method, path string, body any) *reply {
	t.Helper()
	var s string
	switch b := body.(type) {
	case nil:
	case string:
		s = b
	default:
		s = string(mustJSON(t, b))
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	return send(t, method, m.Admin+path, h, s)
}

func usrStatus(t *testing.T, base, token string) int {
	t.Helper()
	return get(t, base+"/api/orders", token).Status
}

func TestKeyRotationOfGeneratedKeysOnTwoInstances(t *testing.T) {
	srv := rdsStart(t)
	fake, wechatURL := startWeChat(t, wechattest.Options{})
	fake.AddApp(testAppID, testSecret)
	up := startUpstream(t)
	global := "\tstorage file_system " + t.TempDir()
	ca := multiNew(t, "CA", global, "\trespond ok")
	ca.Start()
	ca.Stop()
	site := usrSite(wechatURL, up.Addr, "\t\tstore redis "+srv.URL+"\n\t\tkey_rotation 2s\n\t\ttoken_ttl 1m")
	a, b := multiNew(t, "A", global, site), multiNew(t, "B", global, site)
	multiStartAll(t, a, b)

	rdsVectorCode(fake, "rot-1")
	first := loginAt(t, a.Base, map[string]string{"code": "rot-1"}).Token
	// Refresh on B until B signs with a newer key.
	var second string
	if !within(8*time.Second, func() bool {
		second = rotRefresh(t, b.Base, first)
		return rotKIDOf(t, second) != rotKIDOf(t, first)
	}) {
		t.Fatal("no new signing key within 8 s with key_rotation 2s")
	}
	for _, m := range []*multiCaddy{a, b} {
		rdsWantProxied(t, m.Base, first)
		rdsWantProxied(t, m.Base, second)
		rdsWantVectorDecrypts(t, m.Base, second)
	}
	// A token of the newest key, whichever instance made it, on the other.
	var third string
	if !within(8*time.Second, func() bool {
		third = rotRefresh(t, a.Base, second)
		return rotKIDOf(t, third) != rotKIDOf(t, second)
	}) {
		t.Fatal("no second rotation within 8 s")
	}
	rdsWantProxied(t, b.Base, third)
	rdsWantProxied(t, b.Base, first)

	t.Run("50 concurrent refreshes over both instances", func(t *testing.T) {
		rotConcurrentRefreshes(t, third, 50, a.Base, b.Base)
	})
}

func TestAdminRevokeAndBanOnTwoInstances(t *testing.T) {
	srv := rdsStart(t)
	fake, wechatURL := startWeChat(t, wechattest.Options{})
	fake.AddApp(testAppID, testSecret)
	up := startUpstream(t)
	site := usrSite(wechatURL, up.Addr, "\t\tstore redis "+srv.URL+"\n\t\tsigning_key "+testSigningKey)
	a, b := multiNew(t, "A", "", site), multiNew(t, "B", "", site)
	multiStartAll(t, a, b)

	victim := randomOpenID()
	n := 0
	login := func(m *multiCaddy, openid string) *reply {
		n++
		code := fmt.Sprintf("usr-code-%d", n)
		fake.AddCode(testAppID, code, wechattest.User{OpenID: openid})
		return postJSON(t, m.Base+"/wx/login", "", map[string]string{"code": code})
	}
	token := func(r *reply) string {
		t.Helper()
		wantStatus(t, r, http.StatusOK)
		return r.Object(t)["token"].(string)
	}
	onA, onB := token(login(a, victim)), token(login(b, victim))
	bystander := token(login(a, randomOpenID()))

	t.Run("revoke", func(t *testing.T) {
		r := usrAdmin(t, a, http.MethodPost, "/wechat_auth/users/revoke", map[string]string{"appid": testAppID, "openid": victim})
		wantStatus(t, r, http.StatusOK)
		done := time.Now()
		got := r.Object(t)
		if got["appid"] != testAppID || got["openid"] != victim {
			t.Errorf("answer %s", r.Body)
		}
		if _, err := time.Parse(time.RFC3339, fmt.Sprint(got["revoked_before"])); err != nil {
			t.Errorf("revoked_before %v is not RFC 3339", got["revoked_before"])
		}
		for _, m := range []*multiCaddy{a, b} {
			for _, tok := range []string{onA, onB} {
				if !within(time.Second-time.Since(done), func() bool { return usrStatus(t, m.Base, tok) == http.StatusUnauthorized }) {
					t.Errorf("%s still accepts a revoked user's token 1 s after the revocation", m.name)
				}
			}
		}
		wantError(t, send(t, http.MethodPost, b.Base+"/wx/refresh", bearer(onA), ""), http.StatusUnauthorized, "invalid_token")
		if s := usrStatus(t, b.Base, bystander); s != http.StatusOK {
			t.Errorf("another user's token answers %d after the revocation", s)
		}
		again := token(login(a, victim))
		for _, m := range []*multiCaddy{a, b} {
			if s := usrStatus(t, m.Base, again); s != http.StatusOK {
				t.Errorf("%s: a login right after the revocation gives a token answered %d", m.name, s)
			}
		}
	})

	t.Run("ban on B reaches A", func(t *testing.T) {
		before := token(login(a, victim))
		r := usrAdmin(t, b, http.MethodPost, "/wechat_auth/users/ban", map[string]string{"appid": testAppID, "openid": victim, "reason": "fraud"})
		wantStatus(t, r, http.StatusOK)
		done := time.Now()
		if !within(time.Second-time.Since(done), func() bool { return usrStatus(t, a.Base, before) == http.StatusUnauthorized }) {
			t.Error("A still accepts the banned user's token 1 s after the ban")
		}
		wantError(t, login(a, victim), http.StatusForbidden, "user_blocked")
		wantError(t, login(b, victim), http.StatusForbidden, "user_blocked")
		if s := usrStatus(t, a.Base, bystander); s != http.StatusOK {
			t.Errorf("another user's token answers %d after the ban", s)
		}
		var list struct {
			Bans []map[string]any `json:"bans"`
		}
		r = usrAdmin(t, a, http.MethodGet, "/wechat_auth/users/bans", nil)
		wantStatus(t, r, http.StatusOK)
		if json.Unmarshal(r.Body, &list) != nil || len(list.Bans) != 1 || list.Bans[0]["openid"] != victim || list.Bans[0]["reason"] != "fraud" {
			t.Errorf("bans on A: %s", r.Body)
		}
	})

	a.Restart()
	t.Run("the ban survives a restart, and lifting it works", func(t *testing.T) {
		wantError(t, login(a, victim), http.StatusForbidden, "user_blocked")
		r := usrAdmin(t, a, http.MethodDelete, "/wechat_auth/users/ban", map[string]string{"appid": testAppID, "openid": victim})
		wantStatus(t, r, http.StatusOK)
		tok := token(login(a, victim))
		if !within(time.Second, func() bool { return login(b, victim).Status == http.StatusOK }) {
			t.Error("B still refuses the login 1 s after the ban was lifted on A")
		}
		if s := usrStatus(t, b.Base, tok); s != http.StatusOK {
			t.Errorf("a token after the lifting answers %d on B", s)
		}
		r = usrAdmin(t, b, http.MethodGet, "/wechat_auth/users/bans", nil)
		if !strings.Contains(string(r.Body), `"bans":[]`) {
			t.Errorf("bans after lifting: %s", r.Body)
		}
	})

	t.Run("a ban with an end", func(t *testing.T) {
		other := randomOpenID()
		until := time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339)
		wantStatus(t, usrAdmin(t, a, http.MethodPost, "/wechat_auth/users/ban", map[string]string{"appid": testAppID, "openid": other, "until": until}), http.StatusOK)
		wantError(t, login(a, other), http.StatusForbidden, "user_blocked")
		if !within(5*time.Second, func() bool { return login(a, other).Status == http.StatusOK }) {
			t.Error("the ban does not end at until")
		}
	})

	t.Run("bad input", func(t *testing.T) {
		for name, body := range map[string]string{
			"not JSON":       `{"appid":`,
			"no openid":      `{"appid":"` + testAppID + `"}`,
			"no appid":       `{"openid":"` + victim + `"}`,
			"bad openid":     `{"appid":"` + testAppID + `","openid":"a b/c"}`,
			"bad until":      `{"appid":"` + testAppID + `","openid":"` + victim + `","until":"tomorrow"}`,
			"until past":     `{"appid":"` + testAppID + `","openid":"` + victim + `","until":"2001-01-01T00:00:00Z"}`,
			"openid integer": `{"appid":"` + testAppID + `","openid":7}`,
			// encoding/json would take the last openid, and OpenID for openid.
			"openid twice":    `{"appid":"` + testAppID + `","openid":"` + victim + `","openid":"someone-else"}`,
			"openid miscased": `{"appid":"` + testAppID + `","OpenID":"` + victim + `"}`,
		} {
			r := usrAdmin(t, a, http.MethodPost, "/wechat_auth/users/ban", body)
			if r.Status != http.StatusBadRequest || r.Object(t)["message"] == "" {
				t.Errorf("%s: %d %s, want 400 with a message", name, r.Status, r.Body)
			}
		}
		for _, path := range []string{"/wechat_auth/users/revoke", "/wechat_auth/users/ban"} {
			r := usrAdmin(t, a, http.MethodPost, path, map[string]string{"appid": "wx0000000000000000", "openid": victim})
			if r.Status != http.StatusNotFound {
				t.Errorf("%s for an unknown appid: %d %s, want 404", path, r.Status, r.Body)
			}
		}
	})

	t.Run("a ban made while Redis is down reaches B once it is back", func(t *testing.T) {
		other := randomOpenID()
		srv.Stop() // restarts empty: nothing sent meanwhile reaches it
		r := usrAdmin(t, a, http.MethodPost, "/wechat_auth/users/ban", map[string]string{"appid": testAppID, "openid": other})
		wantError(t, r, http.StatusServiceUnavailable, "store_unavailable")
		if msg, _ := r.Object(t)["message"].(string); !strings.Contains(msg, "by itself") {
			t.Errorf("the 503's message %q does not say the ban is written by itself", msg)
		}
		srv.Start()
		if !within(10*time.Second, func() bool { return login(b, other).Status == http.StatusForbidden }) {
			t.Error("B does not refuse the login 10 s after Redis came back")
		}
		wantError(t, login(a, other), http.StatusForbidden, "user_blocked")
	})
}

func TestAdminBanWithMemoryStoreSurvivesRestart(t *testing.T) {
	fake, wechatURL := startWeChat(t, wechattest.Options{})
	fake.AddApp(testAppID, testSecret)
	up := startUpstream(t)
	m := multiNew(t, "M", "\tstorage file_system "+t.TempDir(), usrSite(wechatURL, up.Addr, ""))
	m.Start()
	user := randomOpenID()
	n := 0
	login := func() *reply {
		n++
		code := fmt.Sprintf("mem-code-%d", n)
		fake.AddCode(testAppID, code, wechattest.User{OpenID: user})
		return postJSON(t, m.Base+"/wx/login", "", map[string]string{"code": code})
	}
	r := login()
	wantStatus(t, r, http.StatusOK)
	tok := r.Object(t)["token"].(string)
	wantStatus(t, usrAdmin(t, m, http.MethodPost, "/wechat_auth/users/ban", map[string]string{"appid": testAppID, "openid": user}), http.StatusOK)
	wantError(t, get(t, m.Base+"/api/orders", tok), http.StatusUnauthorized, "invalid_token")
	m.Restart()
	wantError(t, login(), http.StatusForbidden, "user_blocked")
	wantError(t, get(t, m.Base+"/api/orders", tok), http.StatusUnauthorized, "invalid_token")
	wantStatus(t, usrAdmin(t, m, http.MethodDelete, "/wechat_auth/users/ban", map[string]string{"appid": testAppID, "openid": user}), http.StatusOK)
	m.Restart()
	wantStatus(t, login(), http.StatusOK)
}

// A deployment that moves from the memory store to Redis by a reload
// keeps its logouts and bans: the logged-out token stays refused, the
// banned user cannot log in, on the instance that moved and on another
// that shares only Redis.
func TestMovingToRedisByAReloadKeepsLogoutsAndBans(t *testing.T) {
	srv := rdsStart(t)
	fake, wechatURL := startWeChat(t, wechattest.Options{})
	fake.AddApp(testAppID, testSecret)
	up := startUpstream(t)
	global := "\tstorage file_system " + t.TempDir()
	keyLine := "\t\tsigning_key " + testSigningKey
	m := multiNew(t, "M", global, usrSite(wechatURL, up.Addr, keyLine))
	m.Start()
	n := 0
	login := func(base, openid string) *reply {
		n++
		code := fmt.Sprintf("move-code-%d", n)
		fake.AddCode(testAppID, code, wechattest.User{OpenID: openid})
		return postJSON(t, base+"/wx/login", "", map[string]string{"code": code})
	}
	leaver, banned := randomOpenID(), randomOpenID()
	r := login(m.Base, leaver)
	wantStatus(t, r, http.StatusOK)
	out := r.Object(t)["token"].(string)
	wantStatus(t, postJSON(t, m.Base+"/wx/logout", out, nil), http.StatusNoContent)
	wantStatus(t, login(m.Base, banned), http.StatusOK)
	wantStatus(t, usrAdmin(t, m, http.MethodPost, "/wechat_auth/users/ban", map[string]string{"appid": testAppID, "openid": banned}), http.StatusOK)

	redisSite := usrSite(wechatURL, up.Addr, keyLine+"\n\t\tstore redis "+srv.URL)
	m.Load(t, m.Caddyfile(global, redisSite))
	// On the instance that moved, from the moment the reload answers.
	wantError(t, get(t, m.Base+"/api/orders", out), http.StatusUnauthorized, "invalid_token")
	wantError(t, login(m.Base, banned), http.StatusForbidden, "user_blocked")
	wantStatus(t, login(m.Base, leaver), http.StatusOK)
	// On another, once the carry has written them to Redis.
	other := multiNew(t, "O", "", redisSite)
	other.Start()
	if !within(5*time.Second, func() bool { return get(t, other.Base+"/api/orders", out).Status == http.StatusUnauthorized }) {
		t.Fatal("another instance still verifies the token logged out before the move after 5 s")
	}
	if !within(5*time.Second, func() bool { return login(other.Base, banned).Status == http.StatusForbidden }) {
		t.Fatal("the user banned before the move can still log in on another instance after 5 s")
	}
	wantError(t, login(other.Base, banned), http.StatusForbidden, "user_blocked")
	wantStatus(t, login(other.Base, leaver), http.StatusOK)
}

// A site moving from the memory store onto a Redis store another site of
// the process already uses (same Redis and signing key) by a reload
// carries what the memory store kept meanwhile.
func TestMovingOntoARedisStoreAlreadyInUseKeepsLogouts(t *testing.T) {
	srv := rdsStart(t)
	fake, wechatURL := startWeChat(t, wechattest.Options{})
	fake.AddApp(testAppID, testSecret)
	up := startUpstream(t)
	global := "\tstorage file_system " + t.TempDir()
	keyLine := "\t\tsigning_key " + testSigningKey
	two := func(secondStore string) string {
		return fmt.Sprintf("\thandle /r/* {\n%s\n\t}\n\thandle {\n%s\n\t}",
			usrSite(wechatURL, up.Addr, keyLine+"\n\t\troute_prefix /r/wx\n\t\tstore redis "+srv.URL),
			usrSite(wechatURL, up.Addr, keyLine+secondStore))
	}
	m := multiNew(t, "M", global, two(""))
	m.Start()
	fake.AddCode(testAppID, "pooled-move", wechattest.User{OpenID: randomOpenID()})
	r := postJSON(t, m.Base+"/wx/login", "", map[string]string{"code": "pooled-move"})
	wantStatus(t, r, http.StatusOK)
	out := r.Object(t)["token"].(string)
	wantStatus(t, postJSON(t, m.Base+"/wx/logout", out, nil), http.StatusNoContent)

	m.Load(t, m.Caddyfile(global, two("\n\t\tstore redis "+srv.URL)))
	wantError(t, get(t, m.Base+"/api/orders", out), http.StatusUnauthorized, "invalid_token")
}

// Two sites of one process, each with its own app, move to one Redis by
// a restart: each site carries its own app's bans, the one whose store
// was already made by the other too.
func TestEverySiteCarriesItsBansWhenAProcessMovesToRedis(t *testing.T) {
	const appB, secretB = "wxsecondsite00001", "secret-of-the-second-site-7d1e"
	srv := rdsStart(t)
	fake, wechatURL := startWeChat(t, wechattest.Options{})
	fake.AddApp(testAppID, testSecret)
	fake.AddApp(appB, secretB)
	up := startUpstream(t)
	global := "\tstorage file_system " + t.TempDir()
	sites := func(store string) string {
		b := fmt.Sprintf("\twechat_auth {\n\t\tapp_id %s\n\t\tapp_secret %s\n\t\tapi_base %s\n\t\ttimeout %s\n\t\tsigning_key %s\n\t\troute_prefix /b/wx%s\n\t}\n\treverse_proxy %s",
			appB, secretB, wechatURL, testTimeout, testSigningKey, store, up.Addr)
		return fmt.Sprintf("\thandle /b/* {\n%s\n\t}\n\thandle {\n%s\n\t}", b, usrSite(wechatURL, up.Addr, "\t\tsigning_key "+testSigningKey+store))
	}
	m := multiNew(t, "M", global, sites(""))
	m.Start()
	users := map[string]string{testAppID: randomOpenID(), appB: randomOpenID()}
	for app, openid := range users {
		wantStatus(t, usrAdmin(t, m, http.MethodPost, "/wechat_auth/users/ban", map[string]string{"appid": app, "openid": openid}), http.StatusOK)
	}
	store := "\n\t\tstore redis " + srv.URL
	if err := os.WriteFile(filepath.Join(m.dir, "Caddyfile"), []byte(m.Caddyfile(global, sites(store))), 0o600); err != nil {
		t.Fatal(err)
	}
	m.Restart()
	other := multiNew(t, "O", "", sites(store))
	other.Start()
	n := 0
	for _, base := range []string{m.Base, other.Base} {
		for app, openid := range users {
			prefix := "/wx"
			if app == appB {
				prefix = "/b/wx"
			}
			login := func() int {
				n++
				code := fmt.Sprintf("two-sites-%d", n)
				fake.AddCode(app, code, wechattest.User{OpenID: openid})
				return postJSON(t, base+prefix+"/login", "", map[string]string{"code": code}).Status
			}
			if !within(5*time.Second, func() bool { return login() == http.StatusForbidden }) {
				t.Errorf("%s: the user banned on %s's site before the move can log in", base, app)
			}
		}
	}
}
