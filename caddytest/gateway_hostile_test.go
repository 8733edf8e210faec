package caddytest

// Points 3, 4, 5 and 7 of issue 20, through a real Caddy against a fake
// WeChat that can be hostile:
//   - 3: an answer (JSON, an egress proxy's HTML error page, a PNG, an
//     answer a caching proxy kept from an earlier call) that echoes the
//     request URL never hands the access token, current or recent, to the
//     caller, in the body or in any header;
//   - 4: the caller's access_token, in any spelling, never reaches WeChat;
//   - 5: with `allow *`, token-endpoint look-alikes are refused 400;
//   - 7: the session-key services never answer a session_key, errors
//     included, and store a reset key only from an answer for the same
//     openid without duplicate members.

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

func TestGatewayAllowAllRefusesTokenEndpointLookAlikes(t *testing.T) {
	g := startGateway(t, gwConfig{Allow: "*"})
	for _, p := range []string{
		"/cgi-bin/token;x", "/cgi-bin/token%3b", "/cgi-bin/token%3Bx=1", "/cgi-bin/token.", "/cgi-bin/token%2e",
		"/cgi-bin/token%00", "/cgi-bin/token%20", "/cgi-bin/token%09", "/cgi-bin/token%0a", "/cgi-bin/token%0d",
		"/cgi-bin/token%23", "/cgi-bin/token~", "/cgi-bin/stable_token.", "/cgi-bin/stable_token..",
		"/cgi-bin/stable_token%5c", "/cgi-bin\\stable_token", "/cgi-bin/./x/../token~", "/cgi-bin//token;",
		"/wxa//msg_sec_check", "/wxa/./msg_sec_check", "/wxa/x/../msg_sec_check", "/wxa/msg_sec_check/",
		"/wxa/msg_sec_check%00", "/CGI-BIN/STABLE_TOKEN%3B",
	} {
		for _, m := range []string{"GET", "POST"} {
			r := g.call(t, m, p+"?grant_type=client_credential", nil, `{"grant_type":"client_credential"}`)
			if r.Status != http.StatusBadRequest {
				t.Errorf("%s %s: status %d, want 400: %s", m, p, r.Status, r.Body)
				continue
			}
			wantError(t, r, http.StatusBadRequest, "invalid_request")
		}
	}
	// A suffix that some servers ignore names the token endpoint too, and
	// so do further segments, a CGI script's PATH_INFO.
	for _, p := range []string{"/cgi-bin/token.json", "/cgi-bin/Stable_Token.php",
		"/cgi-bin/token/x", "/cgi-bin/stable_token/json", "/cgi-bin/token%2fx", "/cgi-bin/token.json/x"} {
		wantError(t, g.call(t, "GET", p, nil, ""), http.StatusForbidden, "api_not_allowed")
	}
	for _, p := range []string{wechattest.PathToken, wechattest.PathStableToken} {
		if n := g.WeChat.Calls(p); n != 0 {
			t.Errorf("%s reached WeChat %d times", p, n)
		}
	}
	// Plain paths are still forwarded.
	wantWeChatOK(t, g.call(t, "POST", wechattest.PathSubscribeSend, nil, gwMessage))
	r := g.call(t, "POST", wechattest.PathMsgSecCheck, nil, `{"content":"hello","version":2,"scene":2,"openid":"oUser00000000000000000000001"}`)
	wantWeChatOK(t, r)
	if n := g.WeChat.Calls(wechattest.PathMsgSecCheck); n != 1 {
		t.Errorf("msg_sec_check reached WeChat %d times, want only the plain call", n)
	}
}

// decodeFully percent-decodes s until it no longer changes.
func decodeFully(s string) string {
	for range 8 {
		d, err := url.QueryUnescape(s)
		if err != nil || d == s {
			return s
		}
		s = d
	}
	return s
}

func TestGatewayNeverForwardsTheCallersAccessToken(t *testing.T) {
	g := startGateway(t, gwConfig{Allow: wechattest.PathSubscribeSend})
	const mine = "CALLERTOKEN"
	for _, p := range []string{
		"access_token=" + mine, "ACCESS_TOKEN=" + mine, "Access_Token=" + mine, "access_token[]=" + mine,
		"access_token%5B%5D=" + mine, "access_token%00=" + mine, "access.token=" + mine, "access+token=" + mine,
		"access%5Ftoken=" + mine, "access%255Ftoken=" + mine, "lang=en;access_token=" + mine,
		"lang=en%3Baccess_token%3D" + mine, "lang=en%26access_token%3D" + mine, "acce%C5%BFs_token=" + mine,
		"%20access_token=" + mine, "access-token=" + mine,
	} {
		wantWeChatOK(t, g.call(t, "POST", wechattest.PathSubscribeSend+"?page=1&"+p+"&x=2", nil, gwMessage))
		got := g.WeChat.LastQuery(wechattest.PathSubscribeSend)
		if d := decodeFully(got); strings.Contains(d, mine) || strings.Count(strings.ToLower(d), "access") != 1 {
			t.Errorf("caller's %q: WeChat got query %q", p, got)
		}
		if !strings.HasPrefix(got, "page=1&x=2&access_token=") {
			t.Errorf("caller's %q: WeChat got query %q, want the rest kept and the app's token", p, got)
		}
	}
}

// wantNoToken fails when any of the tokens is in the answer's body or
// any header.
func wantNoToken(t *testing.T, what string, r *reply, tokens ...string) {
	t.Helper()
	for _, tok := range tokens {
		if tok == "" {
			t.Fatal("a token to look for is empty")
		}
		if bytes.Contains(r.Body, []byte(tok)) {
			t.Errorf("%s: the answer's body holds an access token: %q", what, bytes.ReplaceAll(r.Body, []byte(tok), []byte("<TOKEN>")))
		}
		for k, vs := range r.Header {
			for _, v := range vs {
				if strings.Contains(v, tok) || strings.Contains(decodeFully(v), tok) {
					t.Errorf("%s: the answer's header %s holds an access token", what, k)
				}
			}
		}
	}
}

func TestGatewayNeverHandsOutTheAccessTokenAnEchoHolds(t *testing.T) {
	g := startGateway(t, gwConfig{Allow: wechattest.PathSubscribeSend + " " + wechattest.PathQRCode + " " + wechattest.PathMsgSecCheck})
	wantStatus(t, g.call(t, "POST", wechattest.PathQRCode, nil, `{"scene":"a"}`), http.StatusOK)
	t1 := g.WeChat.AccessToken(testAppID)

	// WeChat's JSON error quoting the URL.
	g.WeChat.HostileNext(wechattest.PathSubscribeSend, wechattest.EchoJSON)
	r := g.call(t, "POST", wechattest.PathSubscribeSend, nil, gwMessage)
	wantStatus(t, r, http.StatusOK)
	wantNoToken(t, "JSON echo", r, t1)
	if msg, _ := r.Object(t)["errmsg"].(string); !strings.Contains(msg, "access_token=ACCESS_TOKEN") {
		t.Errorf("the echo's errmsg %q does not show the token replaced", msg)
	}

	// An egress proxy's HTML error page.
	g.WeChat.HostileNext(wechattest.PathMsgSecCheck, wechattest.EchoHTML)
	r = g.call(t, "POST", wechattest.PathMsgSecCheck+"?lang=en", nil, `{"content":"hi","version":2,"scene":2,"openid":"oUser00000000000000000000001"}`)
	if r.Status != http.StatusBadGateway && r.Status != http.StatusServiceUnavailable {
		t.Errorf("an HTML 502 page answered %d", r.Status)
	}
	wantNoToken(t, "HTML page", r, t1)

	// A binary answer.
	g.WeChat.HostileNext(wechattest.PathQRCode, wechattest.EchoImage)
	r = g.call(t, "POST", wechattest.PathQRCode, nil, `{"scene":"b"}`)
	wantStatus(t, r, http.StatusOK)
	wantNoToken(t, "PNG", r, t1)
	if qr := wechattest.QRCode("echo"); !bytes.HasPrefix(r.Body, qr) {
		t.Errorf("the image itself was changed")
	}

	// A token WeChat no longer takes: recent, not current, echoed by a
	// caching proxy in an answer to a later call.
	g.WeChat.InvalidateAccessToken(testAppID)
	wantWeChatOK(t, g.call(t, "POST", wechattest.PathSubscribeSend, nil, gwMessage))
	t2 := g.WeChat.AccessToken(testAppID)
	if t2 == t1 {
		t.Fatal("the fake did not issue a new token")
	}
	g.WeChat.HostileNext(wechattest.PathQRCode, wechattest.EchoEarlier)
	r = g.call(t, "POST", wechattest.PathQRCode, nil, `{"scene":"c"}`)
	wantStatus(t, r, http.StatusOK)
	wantNoToken(t, "a cached echo", r, t1, t2)
	if !bytes.Contains(r.Body, []byte("access_token=ACCESS_TOKEN")) {
		t.Errorf("the cached echo %s does not show the token replaced", r.Body)
	}
}

// TestGatewaySaysWhenWeChatsAnswerIsTooLarge: an answer past 16 MiB is
// not passed on, and the caller is told why, not that WeChat is down.
func TestGatewaySaysWhenWeChatsAnswerIsTooLarge(t *testing.T) {
	g := startGateway(t, gwConfig{Allow: wechattest.PathMsgSecCheck})
	g.WeChat.HostileNext(wechattest.PathMsgSecCheck, wechattest.Huge)
	r := g.call(t, "POST", wechattest.PathMsgSecCheck, nil, `{"content":"hi","version":2,"scene":2,"openid":"oUser00000000000000000000001"}`)
	wantStatus(t, r, http.StatusServiceUnavailable)
	if msg, _ := r.Object(t)["message"].(string); !strings.Contains(msg, "larger than 16 MiB") {
		t.Errorf("the answer says %q, want that WeChat's answer was too large", msg)
	}
}

func TestGatewaySessionKeyServicesNeverAnswerASessionKey(t *testing.T) {
	g := startGateway(t, gwConfig{Allow: gwSessionAllow})
	u := g.addUser("gw-hostile-key")
	g.login(t, "gw-hostile-key")
	signature := func() any {
		return g.call(t, "POST", "/wechat_auth/user_signature?openid="+u.OpenID, nil, "x").Object(t)["signature"]
	}
	noKey := func(what string, r *reply) {
		t.Helper()
		if bytes.Contains(bytes.ToLower(r.Body), []byte("session_key")) {
			t.Errorf("%s: the answer holds a session_key: %s", what, r.Body)
		}
	}
	q := "?openid=" + u.OpenID
	// Stale, with a key: WeChat's errcode comes back, the key does not.
	for _, p := range []string{wechattest.PathCheckSession, wechattest.PathResetSessionKey} {
		g.WeChat.HostileNext(p, wechattest.StaleWithSessionKey)
		r := g.call(t, "GET", p+q, nil, "")
		wantStatus(t, r, http.StatusOK)
		noKey(p+" 87009", r)
		if code := r.Object(t)["errcode"]; code != float64(wechattest.ErrSessionKeyStale) {
			t.Errorf("%s: errcode %v, want WeChat's %d", p, code, wechattest.ErrSessionKeyStale)
		}
	}
	// Resets that are not this user's, or not plainly: nothing stored.
	for _, h := range []wechattest.Hostile{wechattest.ResetForOtherUser, wechattest.ResetWithDuplicates, wechattest.ResetWithoutOpenID} {
		g.WeChat.HostileNext(wechattest.PathResetSessionKey, h)
		r := g.call(t, "GET", wechattest.PathResetSessionKey+q, nil, "")
		noKey(fmt.Sprintf("reset %d", h), r)
		wantError(t, r, http.StatusServiceUnavailable, "wechat_unavailable")
		if got := signature(); got != hmacHex(u.SessionKey, "x") {
			t.Fatalf("reset answer %d changed the stored key", h)
		}
	}
	// An echo on a session-key service hands out neither token nor key.
	g.WeChat.HostileNext(wechattest.PathCheckSession, wechattest.EchoJSON)
	r := g.call(t, "GET", wechattest.PathCheckSession+q, nil, "")
	wantNoToken(t, "checksession echo", r, g.WeChat.AccessToken(testAppID))
	noKey("checksession echo", r)
	// A plain reset still works.
	r = g.call(t, "GET", wechattest.PathResetSessionKey+q, nil, "")
	noKey("reset", r)
	if m := wantWeChatOK(t, r); m["openid"] != u.OpenID {
		t.Errorf("reset answer %s", r.Body)
	}
	if k, _ := g.WeChat.SessionKey(u.OpenID); signature() != hmacHex(k, "x") {
		t.Error("a plain reset was not stored")
	}
}
