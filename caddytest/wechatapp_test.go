package caddytest

// Acceptance of issue 21's `wechat` app, through a real Caddy against the
// fake WeChat: the app holds the app, its secret, api_base and
// signing_key; a bare wechat_auth on the site and a wechat_api with only
// its allow line use them. Logins work, tokens verify, the gateway calls
// WeChat and reads the session wechat_auth stored, and the process fetches
// one access token. A bad value in the app is a load error naming it, and
// the running config keeps serving.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/wechattest"
	"github.com/redis/go-redis/v9"
)

func TestWeChatAppServesBareHandlersAndTheGateway(t *testing.T) {
	st := &stack{Base: siteBase}
	st.WeChat, st.WeChatURL = startWeChat(t, optsSingleUse)
	st.Upstream = startUpstream(t)
	st.WeChat.AddApp(testAppID, testSecret)
	app := fmt.Sprintf("\twechat {\n\t\tapp %s %s\n\t\tapi_base %s\n\t\ttimeout %s\n\t\tsigning_key %s\n\t}\n",
		testAppID, testSecret, st.WeChatURL, testTimeout, testSigningKey)
	st.Caddyfile = globalOptions(app) + fmt.Sprintf(`
%s {
	wechat_auth
	reverse_proxy %s
}

%s {
	wechat_api {
		allow %s %s
	}
}
`, siteBase, st.Upstream.Addr, siteBase2, wechattest.PathSubscribeSend, gwSessionAllow)
	loadCaddy(t, st.Caddyfile)
	g := &gwStack{stack: st, GW: siteBase2}

	u := g.addUser("app-user")
	lr := g.login(t, "app-user")
	r := get(t, g.Base+"/api/profile", lr.Token)
	wantStatus(t, r, http.StatusOK)
	if got := r.Seen(t).Header.Get("X-Wx-Openid"); got != u.OpenID {
		t.Fatalf("the upstream got openid %q, want %q", got, u.OpenID)
	}
	wantError(t, get(t, g.Base+"/api/profile", ""), http.StatusUnauthorized, "unauthorized")

	// The gateway calls WeChat with the app's token, and reads the session
	// wechat_auth stored (checksession is signed with its session_key,
	// which the fake checks).
	wantWeChatOK(t, g.call(t, "POST", wechattest.PathSubscribeSend, nil, gwMessage))
	wantWeChatOK(t, g.call(t, "GET", "/wxa/checksession?openid="+u.OpenID, nil, ""))
	if n := g.WeChat.Calls(wechattest.PathStableToken); n != 1 {
		t.Errorf("%d stable_token calls for the process, want 1", n)
	}

	// A short signing_key in the app is refused at load, naming it; the
	// running config keeps serving.
	bad := strings.Replace(st.Caddyfile, "signing_key "+testSigningKey, "signing_key too-short", 1)
	req, err := http.NewRequest(http.MethodPost, adminURL+"/load", strings.NewReader(bad))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/caddyfile")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("POST /load: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatal("Caddy loaded a wechat app with a 9-byte signing_key")
	}
	if !strings.Contains(string(body), "wechat: signing_key is 9 bytes") {
		t.Errorf("the load error does not name the wechat app's signing_key: %s", body)
	}
	httpClient.CloseIdleConnections()
	wantStatus(t, get(t, g.Base+"/api/profile", lr.Token), http.StatusOK)
	wantWeChatOK(t, g.call(t, "POST", wechattest.PathSubscribeSend, nil, gwMessage))
}

// A handler with lines of its own uses only those: the wechat app's apps
// are not added to its own, and its own are not the app's. The app's
// settings it leaves unused without setting them itself (the signing key
// here) are named in a WARN at load, not ignored without a word.
func TestHandlerWithItsOwnLinesDoesNotMixWithTheWeChatApp(t *testing.T) {
	const globalApp, globalSecret = "wxglobalapp000001", "secret-of-the-global-app-3f9a"
	st := &stack{Base: siteBase}
	st.WeChat, st.WeChatURL = startWeChat(t, optsSingleUse)
	st.Upstream = startUpstream(t)
	st.WeChat.AddApp(testAppID, testSecret)
	st.WeChat.AddApp(globalApp, globalSecret)
	app := fmt.Sprintf("\twechat {\n\t\tapp %s %s\n\t\tapi_base %s\n\t\tsigning_key %s\n\t}\n",
		globalApp, globalSecret, st.WeChatURL, testSigningKey)
	own := fmt.Sprintf("\t\tapp %s %s\n\t\tapi_base %s\n\t\ttimeout %s\n", testAppID, testSecret, st.WeChatURL, testTimeout)
	logPath, logOption := debugLog(t)
	st.Caddyfile = globalOptions(logOption+"\n"+app) + wechatSite(siteBase, own, st.Upstream.Addr, "")
	loadCaddy(t, st.Caddyfile)
	var warned []string
	for _, l := range strings.Split(readFile(t, logPath), "\n") {
		if strings.Contains(l, `"level":"warn"`) && strings.Contains(l, "uses none of the wechat global option's") {
			warned = append(warned, l)
		}
	}
	if len(warned) != 1 || !strings.Contains(warned[0], `"unused":["signing_key"]`) {
		t.Errorf("want one WARN naming the unused signing_key, got %q", warned)
	}

	st.addUser("own-app-user")
	lr := st.loginApp(t, testAppID, "own-app-user")
	wantStatus(t, get(t, st.Base+"/api/profile", lr.Token), http.StatusOK)
	st.WeChat.AddCode(globalApp, "global-app-user", wechattest.User{OpenID: randomOpenID()})
	wantError(t, postJSON(t, siteBase+"/wx/login", "", map[string]string{"code": "global-app-user", "appid": globalApp}),
		http.StatusBadRequest, "invalid_request")
}

// A handler whose only line is `app_id <appid>` (no secret) names one of
// the wechat app's apps: it uses the app's settings, that app's secret,
// and serves that app alone.
func TestHandlerNamesAWeChatAppAppByItsAppID(t *testing.T) {
	const otherApp, otherSecret = "wxglobalapp000002", "secret-of-the-other-app-81c2"
	st := &stack{Base: siteBase}
	st.WeChat, st.WeChatURL = startWeChat(t, optsSingleUse)
	st.Upstream = startUpstream(t)
	st.WeChat.AddApp(testAppID, testSecret)
	st.WeChat.AddApp(otherApp, otherSecret)
	app := fmt.Sprintf("\twechat {\n\t\tapp %s %s\n\t\tapp %s %s\n\t\tapi_base %s\n\t\ttimeout %s\n\t\tsigning_key %s\n\t}\n",
		otherApp, otherSecret, testAppID, testSecret, st.WeChatURL, testTimeout, testSigningKey)
	st.Caddyfile = globalOptions(app) + wechatSite(siteBase, "\t\tapp_id "+testAppID, st.Upstream.Addr, "")
	loadCaddy(t, st.Caddyfile)

	u := st.addUser("named-app-user")
	lr := st.login(t, "named-app-user") // no appid field: the one app it serves
	r := get(t, st.Base+"/api/profile", lr.Token)
	wantStatus(t, r, http.StatusOK)
	if got := r.Seen(t).Header.Get("X-Wx-Appid"); got != testAppID || lr.OpenID != u.OpenID {
		t.Fatalf("the upstream got appid %q (openid %q), want %s (%s)", got, lr.OpenID, testAppID, u.OpenID)
	}
	st.WeChat.AddCode(otherApp, "other-app-user", wechattest.User{OpenID: randomOpenID()})
	wantError(t, postJSON(t, siteBase+"/wx/login", "", map[string]string{"code": "other-app-user", "appid": otherApp}),
		http.StatusBadRequest, "invalid_request")

	// Its web block's apps are the wechat app's too: their secrets come
	// from there, and a login inside WeChat goes to the Official Account.
	st.WeChat.AddApp(oaAppID, webSecret)
	withWeb := fmt.Sprintf("	wechat {\n\t\tapp %s %s\n\t\tapp %s %s\n\t\tapi_base %s\n\t\ttimeout %s\n\t\tsigning_key %s\n\t}\n",
		testAppID, testSecret, oaAppID, webSecret, st.WeChatURL, testTimeout, testSigningKey)
	web := "\t\tapp_id " + testAppID + "\n\t\tweb {\n\t\t\toa_app " + oaAppID + "\n\t\t\treturn_to " + siteBase + "/\n\t\t}"
	loadCaddy(t, globalOptions(withWeb)+wechatSite(siteBase, web, st.Upstream.Addr, ""))
	h := http.Header{}
	h.Set("User-Agent", weChatUA)
	resp := sendNoFollow(t, http.MethodGet, siteBase+"/wx/web/login?return_to=/", h, "")
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.Contains(loc, "appid="+oaAppID) {
		t.Fatalf("web login inside WeChat: %d to %q, want a redirect to the Official Account's authorize page", resp.StatusCode, loc)
	}

	// The same with every appid a placeholder, written one way in the
	// wechat app and another in the handler: they name the same apps.
	t.Setenv("WECHAT_TEST_MP_APPID", testAppID)
	t.Setenv("WECHAT_TEST_OA_APPID", oaAppID)
	withWeb = fmt.Sprintf("	wechat {\n\t\tapp {env.WECHAT_TEST_MP_APPID} %s\n\t\tapp %s %s\n\t\tapi_base %s\n\t\ttimeout %s\n\t\tsigning_key %s\n\t}\n",
		testSecret, oaAppID, webSecret, st.WeChatURL, testTimeout, testSigningKey)
	web = "\t\tapp_id " + testAppID + "\n\t\tweb {\n\t\t\toa_app {env.WECHAT_TEST_OA_APPID}\n\t\t\treturn_to " + siteBase + "/\n\t\t}"
	loadCaddy(t, globalOptions(withWeb)+wechatSite(siteBase, web, st.Upstream.Addr, ""))
	resp = sendNoFollow(t, http.MethodGet, siteBase+"/wx/web/login?return_to=/", h, "")
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.Contains(loc, "appid="+oaAppID) {
		t.Fatalf("web login inside WeChat, apps named by placeholders: %d to %q, want the Official Account's authorize page", resp.StatusCode, loc)
	}
	st.addUser("placeholder-app-user")
	lr = st.login(t, "placeholder-app-user")
	if got := get(t, st.Base+"/api/profile", lr.Token).Seen(t).Header.Get("X-Wx-Appid"); got != testAppID {
		t.Fatalf("apps named by placeholders: the upstream got appid %q, want %s", got, testAppID)
	}
}

// dropSubscriptions has Redis drop its subscribers, as when it restarts,
// waiting up to 10 s for at least one.
func dropSubscriptions(t *testing.T, c *redis.Client) {
	t.Helper()
	dropped := within(10*time.Second, func() bool {
		n, err := c.Do(context.Background(), "CLIENT", "KILL", "TYPE", "pubsub").Int()
		if err != nil {
			t.Fatal(err)
		}
		return n > 0
	})
	if !dropped {
		t.Fatal("no Redis subscriber to drop within 10 s")
	}
}

// A Redis session store that wechat_auth and wechat_api share logs as
// wechat_auth's, whichever of them made it or holds it (Caddy provisions
// the sites in map order, so each load may differ): a log that includes
// http.handlers.wechat_auth alone gets its lines (here, the revocation
// subscription lost when Redis drops it).
func TestSharedRedisStoreLogsAsWeChatAuth(t *testing.T) {
	rs := rdsStart(t)
	fake, wechatURL := startWeChat(t, optsSingleUse)
	fake.AddApp(testAppID, testSecret)
	c := rs.Client()
	defer c.Close()
	for round := range 4 {
		logPath := filepath.Join(t.TempDir(), fmt.Sprintf("auth-%d.log", round))
		app := fmt.Sprintf("\twechat {\n\t\tapp %s %s\n\t\tapi_base %s\n\t\tsigning_key %s\n\t\tstore redis %s\n\t}\n"+
			"\tlog authlog {\n\t\tinclude http.handlers.wechat_auth\n\t\toutput file %s\n\t}\n",
			testAppID, testSecret, wechatURL, testSigningKey, rs.URL, logPath)
		loadCaddy(t, globalOptions(app)+fmt.Sprintf(`
%s {
	wechat_auth
	respond ok
}

%s {
	wechat_api {
		allow %s
	}
}
`, siteBase, siteBase2, wechattest.PathSubscribeSend))
		// Once the store is subscribed (again, after the last round's kill).
		dropSubscriptions(t, c)
		const line = "Redis subscription lost"
		if !within(10*time.Second, func() bool { return strings.Contains(readFile(t, logPath), line) }) {
			t.Fatalf("load %d: wechat_auth's log has no %q line:\n%s", round+1, line, readFile(t, logPath))
		}
	}
}

// A push receiver's outbox borrows the client of the Redis session store
// wechat_auth keeps there; after a reload that drops wechat_auth, the
// store lives on for the outbox, and its lines go to the running config's
// log, not to the replaced one's.
func TestBorrowedRedisStoreLogsWithTheRunningConfig(t *testing.T) {
	rs := rdsStart(t)
	fake, wechatURL := startWeChat(t, optsSingleUse)
	fake.AddApp(testAppID, testSecret)
	up := startPushUpstream(t)
	dir := t.TempDir()
	global := func(logName string) string {
		return fmt.Sprintf("\twechat {\n\t\tapp %s %s\n\t\tapi_base %s\n\t\tsigning_key %s\n\t\tstore redis %s\n\t}\n"+
			"\tlog authlog {\n\t\tinclude http.handlers.wechat_auth\n\t\toutput file %s\n\t}\n",
			testAppID, testSecret, wechatURL, testSigningKey, rs.URL, filepath.Join(dir, logName))
	}
	push := pushHandler(pushPath, pushLines(up.URL, ""))
	loadCaddy(t, globalOptions(global("first.log"))+"\n"+siteBase+" {\n"+push+"\twechat_auth\n\trespond ok\n}\n")
	loadCaddy(t, globalOptions(global("second.log"))+"\n"+siteBase+" {\n"+push+"\trespond 404\n}\n")
	c := rs.Client()
	defer c.Close()
	dropSubscriptions(t, c) // the store lives on for the outbox
	const line = "Redis subscription lost"
	if !within(10*time.Second, func() bool { return strings.Contains(readFile(t, filepath.Join(dir, "second.log")), line) }) {
		t.Fatalf("the running config's log has no %q line; the replaced one's has: %v", line,
			strings.Contains(readFile(t, filepath.Join(dir, "first.log")), line))
	}
}
