package caddytest

// Acceptance points covered here (issue 2, identity headers):
//   - The upstream receives the right X-WX-OPENID, X-WX-APPID, X-WX-UNIONID
//     and no Authorization header.
//   - Client-sent X-WX-OPENID, x-wx-unionid, X_WX_OPENID and X-Wx-Source
//     never reach the upstream: with a valid token, with `optional` and no
//     token, with `optional` and a bad token; without `optional` a request
//     with no valid token never reaches the upstream at all. Each also with
//     Caddy told to keep underscore headers (it drops them by default), so
//     X_WX_OPENID reaches wechat_auth.
//   - No token: 401 unauthorized with WWW-Authenticate: Bearer realm=… and
//     no error attribute.
//   - With `optional`, a request without a token passes on with no identity.
//   - The {http.auth.user.*} placeholders carry the verified identity.

import (
	"net/http"
	"strings"
	"testing"
)

func TestUpstreamReceivesVerifiedIdentity(t *testing.T) {
	st := startStack(t, stackConfig{})
	user := st.addUser("who")
	lr := st.login(t, "who")

	r := get(t, st.Base+"/api/orders?page=2", lr.Token)
	wantStatus(t, r, http.StatusOK)
	seen := r.Seen(t)
	want := map[string]string{
		"X-Wx-Openid":  user.OpenID,
		"X-Wx-Appid":   testAppID,
		"X-Wx-Unionid": user.UnionID,
	}
	for name, v := range want {
		if got := seen.Header.Values(name); len(got) != 1 || got[0] != v {
			t.Errorf("upstream got %s = %q, want %q", name, got, v)
		}
	}
	if auth := seen.Header.Values("Authorization"); len(auth) != 0 {
		t.Errorf("upstream got Authorization %q; the token must stop at Caddy", auth)
	}
	if seen.Path != "/api/orders" {
		t.Errorf("upstream got path %q", seen.Path)
	}
}

func TestUpstreamGetsNoUnionIDWhenWeChatGaveNone(t *testing.T) {
	st := startStack(t, stackConfig{})
	st.addUserWithKey("no-union", "")
	lr := st.login(t, "no-union")
	seen := get(t, st.Base+"/api", lr.Token).Seen(t)
	if v := seen.Header.Values("X-Wx-Unionid"); len(v) != 0 {
		t.Errorf("upstream got X-WX-UNIONID %q for a user without unionid", v)
	}
	if seen.Header.Get("X-Wx-Openid") != lr.OpenID {
		t.Errorf("upstream got X-WX-OPENID %q, want %q", seen.Header.Get("X-Wx-Openid"), lr.OpenID)
	}
}

func TestNoTokenIsUnauthorized(t *testing.T) {
	st := startStack(t, stackConfig{})
	r := get(t, st.Base+"/api/orders", "")
	wantError(t, r, http.StatusUnauthorized, "unauthorized")
	if st.Upstream.Count() != 0 {
		t.Errorf("a request without token reached the upstream")
	}
}

// spoofHeaders are identity headers a client may try to set, in the
// spellings a server or CGI layer may normalise into X-WX-OPENID.
var spoofHeaders = map[string]string{
	"X-WX-OPENID":  "oSPOOFEDopenid",
	"x-wx-unionid": "uSPOOFEDunionid",
	"X_WX_OPENID":  "oSPOOFEDunderscore",
	"X-Wx-Source":  "spoofed-source",
	"X-WX-APPID":   "wxSPOOFEDappid",
}

// spoofedRequestHeader returns a request header carrying every spoofHeaders
// entry with its exact spelling, plus auth.
func spoofedRequestHeader(auth string) http.Header {
	h := http.Header{}
	for k, v := range spoofHeaders {
		h[k] = []string{v} // exact spelling, not canonicalised
	}
	if auth != "" {
		h.Set("Authorization", auth)
	}
	return h
}

// checkNoSpoofedIdentity fails when the upstream saw any spoofed value, or
// any x-wx-* header other than the identity wechat_auth set.
func checkNoSpoofedIdentity(t *testing.T, seen seenRequest, openid string) {
	t.Helper()
	for name, values := range seen.Header {
		folded := strings.ReplaceAll(strings.ToLower(name), "_", "-")
		for _, v := range values {
			if strings.Contains(v, "SPOOFED") || v == "spoofed-source" {
				t.Errorf("upstream got client-sent %s: %q", name, v)
			}
		}
		if strings.HasPrefix(folded, "x-wx-") && openid == "" {
			t.Errorf("anonymous request reached the upstream with %s: %q", name, values)
		}
	}
	if openid != "" && seen.Header.Get("X-Wx-Openid") != openid {
		t.Errorf("upstream got X-WX-OPENID %q, want %q", seen.Header.Get("X-Wx-Openid"), openid)
	}
}

// underscoreHeadersKept makes Caddy keep headers with underscores, which it
// drops by default (GHSA-f59h-q822-g45g) before any handler runs; only
// then does wechat_auth see X_WX_OPENID and must strip it itself.
const underscoreHeadersKept = "\tservers {\n\t\texpected_underscore_headers x_*\n\t}"

func TestClientIdentityHeadersNeverReachUpstream(t *testing.T) {
	for _, variant := range []struct {
		name     string
		optional bool
		global   string
	}{
		{"strict", false, ""},
		{"optional", true, ""},
		{"strict, underscore headers kept", false, underscoreHeadersKept},
		{"optional, underscore headers kept", true, underscoreHeadersKept},
	} {
		optional := variant.optional
		cfg := stackConfig{Global: variant.global}
		if optional {
			cfg.Directive = "\t\toptional\n"
		}
		t.Run(variant.name, func(t *testing.T) {
			st := startStack(t, cfg)
			st.addUser("victim")
			lr := st.login(t, "victim")

			cases := []struct {
				name, auth, openid string
			}{
				{"valid token", "Bearer " + lr.Token, lr.OpenID},
				{"no token", "", ""},
				{"bad token", "Bearer " + lr.Token[:len(lr.Token)-3] + "abc", ""},
				{"basic auth", "Basic dXNlcjpwYXNz", ""},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					before := st.Upstream.Count()
					r := send(t, http.MethodGet, st.Base+"/api/profile", spoofedRequestHeader(c.auth), "")
					if c.openid == "" && !optional {
						if r.Status != http.StatusUnauthorized || st.Upstream.Count() != before {
							t.Fatalf("a request without a valid token reached the upstream: %d %s", r.Status, r.Body)
						}
						return
					}
					wantStatus(t, r, http.StatusOK)
					seen := r.Seen(t)
					checkNoSpoofedIdentity(t, seen, c.openid)
					if c.openid != "" || strings.HasPrefix(c.auth, "Bearer ") {
						if v := seen.Header.Values("Authorization"); len(v) != 0 {
							t.Errorf("upstream got Authorization %q", v)
						}
					}
				})
			}
		})
	}
}

func TestOptionalPassesAnonymousRequestsWithoutIdentity(t *testing.T) {
	st := startStack(t, stackConfig{Directive: "\t\toptional\n"})
	r := get(t, st.Base+"/public/menu", "")
	wantStatus(t, r, http.StatusOK)
	seen := r.Seen(t)
	for _, h := range []string{"X-Wx-Openid", "X-Wx-Appid", "X-Wx-Unionid"} {
		if v := seen.Header.Values(h); len(v) != 0 {
			t.Errorf("anonymous request reached the upstream with %s %q", h, v)
		}
	}
}

func TestPlaceholdersCarryIdentity(t *testing.T) {
	st := startStack(t, stackConfig{ProxyBlock: "\t\theader_up X-User-Id {http.auth.user.id}\n" +
		"\t\theader_up X-User-Union {http.auth.user.unionid}\n\t\theader_up X-User-App {http.auth.user.appid}\n"})
	user := st.addUser("placeholder")
	lr := st.login(t, "placeholder")
	seen := get(t, st.Base+"/api", lr.Token).Seen(t)
	for h, want := range map[string]string{"X-User-Id": user.OpenID, "X-User-Union": user.UnionID, "X-User-App": testAppID} {
		if got := seen.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
}
