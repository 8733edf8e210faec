package caddytest

// Acceptance points covered here:
//   - issue 2: tokens with alg none, a wrong key, a past exp, another
//     audience, the sandbox issuer, or a cut signature, and a token sent only
//     as ?access_token=: 401 (invalid_token where a token was sent), with
//     WWW-Authenticate: Bearer realm="wechat_auth"….
//   - issue 20 point 2: a token signed with the real key whose exp lies
//     more than token_ttl past its iat, or without iat, or with iat in the
//     future: 401 invalid_token.
//   - issue 5: HS384 and HS512 tokens signed with the configured key are
//     refused.
//   - issue 2: /wx/refresh returns a token that works; /wx/logout answers
//     204, after which every token of that session (the login token and a
//     refreshed one) is refused, while other sessions keep working.

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestRefusedTokens(t *testing.T) {
	st := startStack(t, stackConfig{})
	st.addUser("tokens")
	lr := st.login(t, "tokens")
	real := claimsOf(t, lr.Token)
	key := []byte(testSigningKey)

	// with returns the real claims with some changed.
	with := func(changes jwt.MapClaims) jwt.MapClaims {
		c := jwt.MapClaims{}
		for k, v := range real {
			c[k] = v
		}
		for k, v := range changes {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	past := time.Now().Add(-time.Minute).Unix()
	iat := int64(real["iat"].(float64))
	kid := kidOfToken(t, lr.Token)

	// The control: the same claims re-signed HS256 with the right key pass,
	// so every refusal below is for the one thing changed.
	control := forgeToken(t, jwt.SigningMethodHS256, key, with(nil))
	r := get(t, st.Base+"/api", control)
	wantStatus(t, r, http.StatusOK)
	if r.Seen(t).Header.Get("X-Wx-Openid") != lr.OpenID {
		t.Fatalf("the re-signed control token did not carry the identity")
	}

	tests := []struct {
		name  string
		token string
	}{
		{"alg none", forgeToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, with(nil))},
		{"wrong key", forgeToken(t, jwt.SigningMethodHS256, []byte("another-key-that-is-long-enough-0123456789"), with(nil))},
		// Signed with the real key but living longer than token_ttl (2h),
		// or without or with a future iat: a lifetime is capped.
		{"exp 30 days past iat", forgeToken(t, jwt.SigningMethodHS256, key, with(jwt.MapClaims{"exp": iat + 30*24*3600}))},
		{"exp 30 days past iat, with kid", forgeKID(t, key, kid, with(jwt.MapClaims{"exp": iat + 30*24*3600}))},
		{"exp token_ttl and a minute past iat", forgeKID(t, key, kid, with(jwt.MapClaims{"exp": iat + 7200 + 60}))},
		{"no iat", forgeKID(t, key, kid, with(jwt.MapClaims{"iat": nil}))},
		{"iat in the future", forgeKID(t, key, kid, with(jwt.MapClaims{"iat": iat + 600, "exp": iat + 1200}))},
		{"past exp", forgeToken(t, jwt.SigningMethodHS256, key, with(jwt.MapClaims{"exp": past, "iat": past - 7200}))},
		{"no exp", forgeToken(t, jwt.SigningMethodHS256, key, with(jwt.MapClaims{"exp": nil}))},
		{"other audience", forgeToken(t, jwt.SigningMethodHS256, key, with(jwt.MapClaims{"aud": []string{"wx0000000000000000"}}))},
		{"sandbox issuer", forgeToken(t, jwt.SigningMethodHS256, key, with(jwt.MapClaims{"iss": "wechat_auth-sandbox"}))},
		{"other issuer", forgeToken(t, jwt.SigningMethodHS256, key, with(jwt.MapClaims{"iss": "someone-else"}))},
		{"HS384 with the right key", forgeToken(t, jwt.SigningMethodHS384, key, with(nil))},
		{"HS512 with the right key", forgeToken(t, jwt.SigningMethodHS512, key, with(nil))},
		{"cut signature", lr.Token[:len(lr.Token)-4]},
		{"no signature", lr.Token[:len(lr.Token)-len(lr.Token[lastDot(lr.Token)+1:])]},
		{"not a JWT", "not-a-token"},
		// Signed with the real key, but holding what no header can carry:
		// 401, not the 502 of a header the proxy cannot write.
		{"openid with CR LF", forgeKID(t, key, kid, with(jwt.MapClaims{"sub": "o1\r\nX-WX-OPENID: evil"}))},
		{"openid with NUL", forgeKID(t, key, kid, with(jwt.MapClaims{"sub": "o1\x00\x7f"}))},
		{"unionid with LF", forgeKID(t, key, kid, with(jwt.MapClaims{"unionid": "u1\nX: y"}))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := st.Upstream.Count()
			r := get(t, st.Base+"/api", tt.token)
			wantError(t, r, http.StatusUnauthorized, "invalid_token")
			if st.Upstream.Count() != before {
				t.Errorf("a refused token reached the upstream")
			}
		})
	}

	t.Run("token only in the query string", func(t *testing.T) {
		r := get(t, st.Base+"/api?access_token="+url.QueryEscape(lr.Token), "")
		wantError(t, r, http.StatusUnauthorized, "unauthorized")
	})
	t.Run("token in the query string of a route", func(t *testing.T) {
		r := send(t, http.MethodPost, st.Base+"/wx/refresh?access_token="+url.QueryEscape(lr.Token), nil, "")
		wantError(t, r, http.StatusUnauthorized, "unauthorized")
	})
}

// forgeKID signs claims HS256 with key under a kid header, as the module's
// own tokens are.
func forgeKID(t *testing.T, key []byte, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("forge token: %v", err)
	}
	return s
}

// kidOfToken returns the kid header of a token.
func kidOfToken(t *testing.T, tok string) string {
	t.Helper()
	p, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := p.Header["kid"].(string)
	if kid == "" {
		t.Fatal("a token of the module has no kid")
	}
	return kid
}

func lastDot(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '.' {
			return i
		}
	}
	return -1
}

func TestRefreshReturnsWorkingToken(t *testing.T) {
	st := startStack(t, stackConfig{})
	user := st.addUser("refresh")
	lr := st.login(t, "refresh")

	r := post(t, st.Base+"/wx/refresh", lr.Token, "", "")
	wantStatus(t, r, http.StatusOK)
	var fresh loginResult
	if err := json.Unmarshal(r.Body, &fresh); err != nil || fresh.Token == "" {
		t.Fatalf("refresh answer has no token: %s", r.Body)
	}
	if fresh.TokenType != "Bearer" || fresh.OpenID != user.OpenID || fresh.UnionID != user.UnionID || fresh.ExpiresIn <= 0 {
		t.Errorf("refresh answer %+v does not have the login's shape and identity", fresh)
	}
	if claimsOf(t, fresh.Token)["sid"] != claimsOf(t, lr.Token)["sid"] {
		t.Errorf("refresh started a new session; want the same session")
	}
	seen := get(t, st.Base+"/api", fresh.Token).Seen(t)
	if seen.Header.Get("X-Wx-Openid") != user.OpenID {
		t.Errorf("refreshed token carries openid %q, want %q", seen.Header.Get("X-Wx-Openid"), user.OpenID)
	}
	// The refreshed token can still decrypt: the session is the same.
	enc, iv := encryptFor(t, user.SessionKey, map[string]any{"stepInfoList": []any{}})
	wantStatus(t, postJSON(t, st.Base+"/wx/decrypt", fresh.Token, map[string]string{"encryptedData": enc, "iv": iv}), http.StatusOK)
}

func TestRefreshWithoutTokenIsUnauthorized(t *testing.T) {
	st := startStack(t, stackConfig{})
	wantError(t, post(t, st.Base+"/wx/refresh", "", "", ""), http.StatusUnauthorized, "unauthorized")
	wantError(t, post(t, st.Base+"/wx/refresh", "garbage.token.here", "", ""), http.StatusUnauthorized, "invalid_token")
}

func TestLogoutRevokesEveryTokenOfSession(t *testing.T) {
	st := startStack(t, stackConfig{})
	st.addUser("leaver")
	st.addUser("stayer")
	leaver := st.login(t, "leaver")
	stayer := st.login(t, "stayer")

	r := post(t, st.Base+"/wx/refresh", leaver.Token, "", "")
	wantStatus(t, r, http.StatusOK)
	var refreshed loginResult
	if err := json.Unmarshal(r.Body, &refreshed); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, get(t, st.Base+"/api", refreshed.Token), http.StatusOK)

	r = post(t, st.Base+"/wx/logout", refreshed.Token, "", "")
	wantStatus(t, r, http.StatusNoContent)
	if len(r.Body) != 0 {
		t.Errorf("logout answered a body: %q", r.Body)
	}

	for name, tok := range map[string]string{"login token": leaver.Token, "refreshed token": refreshed.Token} {
		t.Run(name, func(t *testing.T) {
			wantError(t, get(t, st.Base+"/api", tok), http.StatusUnauthorized, "invalid_token")
			wantError(t, post(t, st.Base+"/wx/refresh", tok, "", ""), http.StatusUnauthorized, "invalid_token")
			wantError(t, postJSON(t, st.Base+"/wx/userinfo", tok, map[string]string{"encryptedData": "AAAAAAAAAAAAAAAAAAAAAA==", "iv": "AAAAAAAAAAAAAAAAAAAAAA=="}),
				http.StatusUnauthorized, "invalid_token")
		})
	}
	t.Run("other session unaffected", func(t *testing.T) {
		wantStatus(t, get(t, st.Base+"/api", stayer.Token), http.StatusOK)
	})
	t.Run("logout again", func(t *testing.T) {
		wantError(t, post(t, st.Base+"/wx/logout", leaver.Token, "", ""), http.StatusUnauthorized, "invalid_token")
	})
}

// A logout refuses every token of the session ever issued, until the last
// of them expires, whatever token_ttl is configured now: a token issued
// before a reload cut token_ttl from 2h to 2s stays refused after 2s.
func TestLogoutOutlivesACutTokenTTL(t *testing.T) {
	st := startStack(t, stackConfig{Directive: "\t\ttoken_ttl 2h\n"})
	st.addUser("long-lived")
	long := st.login(t, "long-lived")

	short := strings.Replace(st.Caddyfile, "token_ttl 2h", "token_ttl 2s", 1)
	if short == st.Caddyfile {
		t.Fatal("the config has no token_ttl line to cut")
	}
	loadCaddy(t, short)
	r := post(t, st.Base+"/wx/refresh", long.Token, "", "")
	wantStatus(t, r, http.StatusOK)
	var refreshed loginResult
	if err := json.Unmarshal(r.Body, &refreshed); err != nil || refreshed.ExpiresIn > 2 {
		t.Fatalf("refresh after the cut: %s", r.Body)
	}
	wantStatus(t, post(t, st.Base+"/wx/logout", refreshed.Token, "", ""), http.StatusNoContent)
	wantError(t, get(t, st.Base+"/api", long.Token), http.StatusUnauthorized, "invalid_token")

	time.Sleep(3 * time.Second) // past every token_ttl configured now
	wantError(t, get(t, st.Base+"/api", long.Token), http.StatusUnauthorized, "invalid_token")
	wantError(t, post(t, st.Base+"/wx/refresh", long.Token, "", ""), http.StatusUnauthorized, "invalid_token")

	st.addUser("again")
	st.login(t, "again") // logging in still works
}
