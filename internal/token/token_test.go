package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testSigningKey = "0123456789abcdef0123456789abcdef" // 32 bytes
	testAppID      = "wxtest0000000001"
)

func newTestCodec(issuer string) *Codec {
	return New([]byte(testSigningKey), issuer, time.Hour, map[string]string{testAppID: "secret"})
}

// testSess is a login: the subject a token is issued for, and the
// session_key the token must never hold.
type testSess struct {
	Subject
	SessionKey string
}

func testSession() *testSess {
	return &testSess{
		Subject: Subject{
			SID:     "c2lkLTEyOC1iaXRzLXJhbmRvbQ",
			AppID:   testAppID,
			OpenID:  "oUser0000000000000000000001",
			UnionID: "uUnion000000000000000000001",
		},
		SessionKey: "tiihtNczf5v6AKRyjwEUhQ==",
	}
}

// signClaims signs arbitrary claims the way an attacker or another
// implementation might.
func signClaims(t *testing.T, method jwt.SigningMethod, key any, c jwt.Claims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// goodClaims are the claims of a valid production token, as a map so a
// case can remove or change one.
func goodClaims() jwt.MapClaims {
	now := time.Now()
	s := testSession()
	return jwt.MapClaims{
		"iss": IssuerProduction,
		"sub": s.OpenID,
		"aud": []string{s.AppID},
		"sid": s.SID,
		"iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
	}
}

func TestTokenIssuedVerifiesWithItsIdentity(t *testing.T) {
	tc := newTestCodec(IssuerProduction)
	s := testSession()
	now := time.Now()
	tok, exp, err := tc.Issue(s.Subject, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Add(time.Hour); !exp.Equal(want) {
		t.Errorf("expiry %v, want now + token_ttl = %v", exp, want)
	}
	id, err := tc.Verify(tok)
	if err != nil {
		t.Fatalf("own token refused: %v", err)
	}
	if id.OpenID != s.OpenID || id.UnionID != s.UnionID || id.AppID != s.AppID || id.SID != s.SID {
		t.Errorf("identity %+v does not match session %+v", id, s)
	}
	if id.Expires.Unix() != exp.Unix() {
		t.Errorf("identity expires %v, want %v", id.Expires, exp)
	}

	// Without a unionid the token still verifies, with none.
	s.UnionID = ""
	tok, _, _ = tc.Issue(s.Subject, now)
	if id, err := tc.Verify(tok); err != nil || id.UnionID != "" {
		t.Fatalf("token without unionid: %+v, %v", id, err)
	}
}

// The token names its one audience as a plain string, so a client or
// upstream reading the claims finds aud == appid. Tokens issued before,
// with aud as a one-element array, keep working across the upgrade.
func TestTokenAudienceIsTheAppID(t *testing.T) {
	tc := newTestCodec(IssuerProduction)
	tok, _, err := tc.Issue(testSession().Subject, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	if c["aud"] != testAppID {
		t.Errorf("aud is %#v, want the string %q", c["aud"], testAppID)
	}
	key := []byte(testSigningKey)
	if id, err := tc.Verify(signClaims(t, jwt.SigningMethodHS256, key, goodClaims())); err != nil || id.AppID != testAppID {
		t.Errorf("token with aud as [appid] (the earlier form): %+v, %v", id, err)
	}
}

func TestTokenNeverHoldsSessionKey(t *testing.T) {
	tc := newTestCodec(IssuerProduction)
	s := testSession()
	tok, _, err := tc.Issue(s.Subject, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS compact token: %q", tok)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	keyBytes, _ := base64.StdEncoding.DecodeString(s.SessionKey)
	for _, leak := range []string{s.SessionKey, "session_key", string(keyBytes)} {
		if strings.Contains(string(payload), leak) || strings.Contains(tok, leak) {
			t.Fatalf("token payload %s contains the session_key", payload)
		}
	}
	for _, claim := range []string{`"iss":"wechat_auth"`, `"sub":"` + s.OpenID + `"`, `"sid":"` + s.SID + `"`, `"exp":`, `"iat":`} {
		if !strings.Contains(string(payload), claim) {
			t.Errorf("payload %s lacks %s", payload, claim)
		}
	}
}

func TestTokenVerifyRefusesForgedExpiredAndForeignTokens(t *testing.T) {
	tc := newTestCodec(IssuerProduction)
	key := []byte(testSigningKey)
	good, _, err := tc.Issue(testSession().Subject, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	with := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := goodClaims()
		change(c)
		return c
	}
	parts := strings.Split(good, ".")
	otherPayload := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"wechat_auth","sub":"oVictim","aud":["` + testAppID + `"],"sid":"x","exp":9999999999}`))
	sandboxTok, _, _ := newTestCodec(IssuerSandbox).Issue(testSession().Subject, time.Now())
	expiredTok, _, _ := tc.Issue(testSession().Subject, time.Now().Add(-2*time.Hour))
	otherApp := testSession()
	otherApp.AppID = "wxother"
	otherAppTok, _, _ := tc.Issue(otherApp.Subject, time.Now())

	tests := []struct {
		name string
		tok  string
	}{
		{"alg none", signClaims(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, goodClaims())},
		{"HS384 with the right key", signClaims(t, jwt.SigningMethodHS384, key, goodClaims())},
		{"HS512 with the right key", signClaims(t, jwt.SigningMethodHS512, key, goodClaims())},
		{"ES256", signClaims(t, jwt.SigningMethodES256, ecKey, goodClaims())},
		{"wrong key", signClaims(t, jwt.SigningMethodHS256, []byte("another key of thirty-two bytes!"), goodClaims())},
		{"key prefix only", signClaims(t, jwt.SigningMethodHS256, key[:31], goodClaims())},
		{"expired", expiredTok},
		{"expired one second ago", signClaims(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Second).Unix() }))},
		{"not valid yet", signClaims(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() }))},
		{"missing exp", signClaims(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { delete(c, "exp") }))},
		{"exp not a date", signClaims(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["exp"] = "soon" }))},
		{"another audience", otherAppTok},
		{"two audiences", signClaims(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["aud"] = []string{testAppID, "wxother"} }))},
		{"no audience", signClaims(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { delete(c, "aud") }))},
		{"sandbox issuer", sandboxTok},
		{"no issuer", signClaims(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { delete(c, "iss") }))},
		{"issuer of another service", signClaims(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["iss"] = "wechat_auth2" }))},
		{"missing sid", signClaims(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { delete(c, "sid") }))},
		{"empty sid", signClaims(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["sid"] = "" }))},
		{"missing sub", signClaims(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { delete(c, "sub") }))},
		{"empty sub", signClaims(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["sub"] = "" }))},
		// Claims that become headers: only what an openid or unionid can be.
		{"sub with CR LF", signClaims(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["sub"] = "o1\r\nX-WX-OPENID: evil" }))},
		{"sub with NUL and DEL", signClaims(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["sub"] = "o1\x00\x7f" }))},
		{"sub with a space", signClaims(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["sub"] = "o1 o2" }))},
		{"sub of 65 bytes", signClaims(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["sub"] = strings.Repeat("o", 65) }))},
		{"unionid with LF", signClaims(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["unionid"] = "u1\nX: y" }))},
		{"unionid not ASCII", signClaims(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["unionid"] = "u\u00e9" }))},
		{"cut signature", good[:len(good)-4]},
		{"no signature", parts[0] + "." + parts[1] + "."},
		{"no signature segment", parts[0] + "." + parts[1]},
		{"payload swapped, signature kept", parts[0] + "." + otherPayload + "." + parts[2]},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(otherAppTok, ".")[2]},
		{"extra segment", good + ".AAAA"},
		{"padded base64 segments", parts[0] + "=." + parts[1] + "." + parts[2]},
		{"empty", ""},
		{"garbage", "not a token"},
		{"three dots", ".."},
		{"random base64 segments", "eyJhbGciOiJIUzI1NiJ9.e30.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"JSON instead of JWS", `{"alg":"HS256"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if id, err := tc.Verify(tt.tok); err == nil {
				t.Fatalf("verified as %+v", id)
			}
		})
	}
	if _, err := tc.Verify(good); err != nil {
		t.Fatalf("control: the untouched token is refused: %v", err)
	}
}

func TestSandboxCodecRefusesProductionTokens(t *testing.T) {
	prod, _, _ := newTestCodec(IssuerProduction).Issue(testSession().Subject, time.Now())
	sandbox := newTestCodec(IssuerSandbox)
	if _, err := sandbox.Verify(prod); err == nil {
		t.Fatal("a sandbox config accepted a production token signed with the same key")
	}
	own, _, _ := sandbox.Issue(testSession().Subject, time.Now())
	if _, err := sandbox.Verify(own); err != nil {
		t.Fatalf("a sandbox config refuses its own token: %v", err)
	}
}

// A token's lifetime is capped: exp may lie no further past iat than the
// longest token_ttl in force, iat is required and not in the future. A
// token signed with the real key is refused when it breaks any of these.
func TestTokenLifetimeIsCapped(t *testing.T) {
	// A key of its own: what other tests issue under testSigningKey, with
	// other token_ttls, raises the cap for that key in this process.
	const key = "lifetime-cap-signing-key-0123456789abcdef"
	tc := New([]byte(key), IssuerProduction, time.Hour, map[string]string{testAppID: "secret"})
	kid := tc.ring.Load().Signer().Kid
	now := time.Now()
	with := func(changes jwt.MapClaims) jwt.MapClaims {
		c := goodClaims()
		for k, v := range changes {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	sign := func(c jwt.MapClaims, withKID bool) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
		if withKID {
			tok.Header["kid"] = kid
		}
		s, err := tok.SignedString([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tt := range []struct {
		name   string
		claims jwt.MapClaims
		ok     bool
	}{
		{"token_ttl exactly", with(nil), true},
		{"within the clock leeway", with(jwt.MapClaims{"exp": now.Add(time.Hour + 3*time.Second).Unix()}), true},
		{"iat a second ahead", with(jwt.MapClaims{"iat": now.Add(time.Second).Unix(), "exp": now.Add(time.Hour).Unix()}), true},
		{"30 days", with(jwt.MapClaims{"exp": now.Add(30 * 24 * time.Hour).Unix()}), false},
		{"token_ttl and a minute", with(jwt.MapClaims{"exp": now.Add(time.Hour + time.Minute).Unix()}), false},
		{"iat long ago, exp ahead", with(jwt.MapClaims{"iat": now.Add(-48 * time.Hour).Unix()}), false},
		{"no iat", with(jwt.MapClaims{"iat": nil}), false},
		{"iat in the future", with(jwt.MapClaims{"iat": now.Add(10 * time.Minute).Unix(), "exp": now.Add(30 * time.Minute).Unix()}), false},
	} {
		for _, withKID := range []bool{true, false} {
			tok := sign(tt.claims, withKID)
			_, err := tc.Verify(tok)
			if (err == nil) != tt.ok {
				t.Errorf("%s (kid %v): verify error %v, want accepted %v", tt.name, withKID, err, tt.ok)
			}
			// The hot path says the same, twice (the second from the cache).
			for i := 0; i < 2; i++ {
				if _, err := tc.VerifyCached(tok, now); (err == nil) != tt.ok {
					t.Errorf("%s (kid %v): verifyCached error %v, want accepted %v", tt.name, withKID, err, tt.ok)
				}
			}
		}
	}
}

// A config reloaded with a shorter token_ttl still accepts the tokens this
// process issued under the longer one before, and only those lifetimes.
func TestTokenOfALongerTTLIssuedBeforeAReloadStillVerifies(t *testing.T) {
	const key = "reload-ttl-signing-key-0123456789abcdef"
	apps := map[string]string{testAppID: "secret"}
	before := New([]byte(key), IssuerProduction, 7*24*time.Hour, apps)
	tok, _, err := before.Issue(testSession().Subject, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	after := New([]byte(key), IssuerProduction, time.Hour, apps)
	if _, err := after.Verify(tok); err != nil {
		t.Errorf("a 7-day token issued before the reload is refused: %v", err)
	}
	c := goodClaims()
	c["exp"] = time.Now().Add(30 * 24 * time.Hour).Unix()
	forged := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	forged.Header["kid"] = after.ring.Load().Signer().Kid
	s, err := forged.SignedString([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := after.Verify(s); err == nil {
		t.Error("a 30-day token is accepted though no config issued one")
	}
}
