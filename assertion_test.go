package wechatauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-wechat/wechatauth/internal/assertion"
	"github.com/caddy-wechat/wechatauth/wechattest"
)

type jwkSet struct {
	Keys []struct {
		Kty, Crv, X, Y, Kid, Use, Alg string
	} `json:"keys"`
}

// fetchJWKS reads the site's jwks.json and returns its keys by kid, built
// from x and y alone, as an upstream does.
func fetchJWKS(t *testing.T, s *site) (jwkSet, map[string]*ecdsa.PublicKey) {
	t.Helper()
	w := s.serve(http.MethodGet, "/wx/jwks.json", "", "", nil)
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("jwks.json: %d %s %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	var set jwkSet
	if err := json.Unmarshal(w.Body.Bytes(), &set); err != nil {
		t.Fatalf("jwks.json %s: %v", w.Body, err)
	}
	keys := map[string]*ecdsa.PublicKey{}
	for _, k := range set.Keys {
		if k.Kty != "EC" || k.Crv != "P-256" || k.Use != "sig" || k.Alg != "ES256" || k.Kid == "" {
			t.Fatalf("key %+v is not an ES256 signing key", k)
		}
		x, err1 := base64.RawURLEncoding.DecodeString(k.X)
		y, err2 := base64.RawURLEncoding.DecodeString(k.Y)
		if err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
			t.Fatalf("key %+v: x, y are not 32-byte base64url", k)
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			t.Fatalf("key %+v is not a point of P-256: %v", k, err)
		}
		keys[k.Kid] = pub
	}
	return set, keys
}

// verifyAssertion checks an assertion against the published keys, as an
// upstream with golang-jwt would, and returns its claims.
func verifyAssertion(t *testing.T, keys map[string]*ecdsa.PublicKey, raw, appid string) jwt.MapClaims {
	t.Helper()
	c := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(raw, c, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		if k, ok := keys[kid]; ok {
			return k, nil
		}
		return nil, jwt.ErrTokenUnverifiable
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer("wechat_auth"), jwt.WithAudience(appid), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	if err != nil {
		t.Fatalf("assertion %q does not verify: %v", raw, err)
	}
	return c
}

func TestAssertionCarriesTheVerifiedIdentity(t *testing.T) {
	for _, tc := range []struct {
		name    string
		unionid bool
	}{{"with unionid", true}, {"without unionid", false}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t, &Handler{Assertion: true, TokenTTL: caddy.Duration(30 * time.Minute)}, wechattest.Options{AutoCodes: true, UnionID: tc.unionid})
			a := s.login("c1")
			before := time.Now().Add(-time.Second)
			hdr := bearer(a.Token)
			hdr["X-Wx-Assertion"] = []string{"forged"}
			hdr["x_wx_assertion"] = []string{"forged"} // the client's own spelling, as sent
			s.serve(http.MethodGet, "/api", "", "", hdr)
			got := s.up.header["X-Wx-Assertion"]
			if len(got) != 1 || got[0] == "forged" {
				t.Fatalf("upstream X-Wx-Assertion %q", got)
			}
			//lint:ignore SA1008 the client's own spelling: an upstream would see it as sent
			if _, ok := s.up.header["x_wx_assertion"]; ok {
				t.Fatal("the client's x_wx_assertion reached the upstream")
			}
			_, keys := fetchJWKS(t, s)
			c := verifyAssertion(t, keys, got[0], siteAppID)
			if c["sub"] != a.OpenID || c["aud"] != siteAppID || c["iss"] != "wechat_auth" {
				t.Fatalf("claims %v", c)
			}
			if u, ok := c["unionid"]; tc.unionid && u != a.UnionID || !tc.unionid && ok {
				t.Fatalf("unionid %v, want %q", u, a.UnionID)
			}
			exp, _ := c.GetExpirationTime()
			iat, _ := c.GetIssuedAt()
			tokExp, _ := tokenClaims(t, a.Token).GetExpirationTime()
			if exp.After(tokExp.Time) || iat.Before(before) || iat.After(time.Now()) {
				t.Fatalf("iat %v exp %v; token exp %v", iat, exp, tokExp)
			}
			if life := exp.Sub(iat.Time); life > time.Minute || life < 30*time.Second {
				t.Fatalf("assertion lives %v (iat %v exp %v), want at most a minute", life, iat, exp)
			}
			if _, ok := c["sid"]; ok {
				t.Fatal("the assertion carries the session id")
			}
			// Cached per token: the next request carries the same one.
			s.serve(http.MethodGet, "/api", "", "", bearer(a.Token))
			if again := s.up.header.Get("X-Wx-Assertion"); again != got[0] {
				t.Fatal("a second request with the same token got another assertion")
			}
		})
	}
}

func tokenClaims(t *testing.T, tok string) jwt.MapClaims {
	t.Helper()
	c := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAssertionIsNotSetWithoutIdentity(t *testing.T) {
	s := newSite(t, &Handler{Assertion: true, Optional: true}, wechattest.Options{AutoCodes: true})
	s.serve(http.MethodGet, "/api", "", "", http.Header{"X-Wx-Assertion": {"forged"}})
	if s.up.called != 1 || s.up.header.Get("X-Wx-Assertion") != "" {
		t.Fatalf("anonymous request reached the upstream with X-Wx-Assertion %q", s.up.header.Get("X-Wx-Assertion"))
	}
}

func TestAssertionCustomHeaderIsAnIdentityHeader(t *testing.T) {
	s := newSite(t, &Handler{Assertion: true, AssertionHeader: "x-identity", Optional: true}, wechattest.Options{AutoCodes: true})
	a := s.login("c1")
	s.serve(http.MethodGet, "/api", "", "", http.Header{"X-Identity": {"forged"}, "x_identity": {"forged"}})
	for k := range s.up.header {
		if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), "x-identity") {
			t.Fatalf("a client's %s reached the upstream", k)
		}
	}
	s.serve(http.MethodGet, "/api", "", "", bearer(a.Token))
	_, keys := fetchJWKS(t, s)
	if c := verifyAssertion(t, keys, s.up.header.Get("X-Identity"), siteAppID); c["sub"] != a.OpenID {
		t.Fatalf("claims %v", c)
	}
	if s.up.header.Get("X-Wx-Assertion") != "" {
		t.Fatal("the default header was set although another name is configured")
	}
	w := s.serve(http.MethodGet, "/wx/verify", "", "", nil)
	if !strings.Contains(w.Header().Get(headersToRemove), "x-identity") {
		t.Fatalf("anonymous verify answer does not name x-identity for removal: %q", w.Header().Get(headersToRemove))
	}
}

// provisionOn provisions h with Caddy's storage in dir.
func provisionOn(t *testing.T, h *Handler, dir string) {
	t.Helper()
	storage, _ := json.Marshal(map[string]string{"module": "file_system", "root": dir})
	ctx, err := caddy.ProvisionContext(&caddy.Config{
		StorageRaw: storage,
		Logging:    &caddy.Logging{Logs: map[string]*caddy.CustomLog{"default": {BaseLog: caddy.BaseLog{Level: "ERROR"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Provision(ctx); err != nil {
		t.Fatalf("provision: %v", err)
	}
	t.Cleanup(func() { h.Cleanup() })
}

func TestAssertionKeyIsSharedThroughStorage(t *testing.T) {
	dir := t.TempDir()
	a := &Handler{Sandbox: true, SigningKey: testSigningKey, Assertion: true}
	b := &Handler{Sandbox: true, SigningKey: testSigningKey, Assertion: true}
	provisionOn(t, a, dir)
	provisionOn(t, b, dir)
	if string(a.assertion.JWKS()) != string(b.assertion.JWKS()) {
		t.Fatalf("two instances on one storage publish different keys:\n%s\n%s", a.assertion.JWKS(), b.assertion.JWKS())
	}
	other := &Handler{Sandbox: true, SigningKey: testSigningKey, Assertion: true}
	provisionOn(t, other, t.TempDir())
	if other.assertion.Kid() == a.assertion.Kid() {
		t.Fatal("instances on different storage share a key")
	}
	prod := &Handler{Apps: []App{{AppID: "wx1", AppSecret: "s"}}, SigningKey: testSigningKey, Assertion: true}
	provisionOn(t, prod, dir)
	if prod.assertion.Kid() == a.assertion.Kid() {
		t.Fatal("the sandbox signs with the production assertion key")
	}
}

func writePEM(t *testing.T, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAssertionKeyFromPEM(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(key)
	sec1, _ := x509.MarshalECPrivateKey(key)
	params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}})
	withParams := filepath.Join(t.TempDir(), "openssl.pem")
	os.WriteFile(withParams, append(params, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})...), 0o600)
	want, _ := key.PublicKey.Bytes()
	for name, path := range map[string]string{
		"PKCS#8":                    writePEM(t, "PRIVATE KEY", pkcs8),
		"SEC 1":                     writePEM(t, "EC PRIVATE KEY", sec1),
		"SEC 1 after EC PARAMETERS": withParams,
	} {
		t.Run(name, func(t *testing.T) {
			s := newSite(t, &Handler{Assertion: true, AssertionKey: "{file." + path + "}"}, wechattest.Options{AutoCodes: true})
			_, keys := fetchJWKS(t, s)
			if len(keys) != 1 {
				t.Fatalf("%d keys", len(keys))
			}
			for _, k := range keys {
				got, _ := k.Bytes()
				if string(got) != string(want) {
					t.Fatal("jwks.json publishes another key than the configured one")
				}
			}
			a := s.login("c1")
			s.serve(http.MethodGet, "/api", "", "", bearer(a.Token))
			verifyAssertion(t, keys, s.up.header.Get("X-Wx-Assertion"), siteAppID)
		})
	}
}

func TestCaddyfileAssertion(t *testing.T) {
	for _, tt := range []struct{ input, want string }{
		{"wechat_auth {\n assertion\n}", `{"assertion":true}`},
		{"wechat_auth {\n assertion X-Identity\n}", `{"assertion":true,"assertion_header":"X-Identity"}`},
		{"wechat_auth {\n assertion\n assertion_key {file./etc/wechat/assertion.pem}\n}", `{"assertion":true,"assertion_key":"{file./etc/wechat/assertion.pem}"}`},
	} {
		got, err := parseBlock(t, tt.input)
		if err != nil {
			t.Fatalf("%q: %v", tt.input, err)
		}
		b, _ := json.Marshal(got)
		if string(b) != tt.want {
			t.Errorf("%q gives %s, want %s", tt.input, b, tt.want)
		}
	}
	for _, bad := range []string{"wechat_auth {\n assertion X-A X-B\n}", "wechat_auth {\n assertion_key\n}"} {
		if _, err := parseBlock(t, bad); err == nil || !strings.Contains(err.Error(), "assertion") {
			t.Errorf("%q: error %v", bad, err)
		}
	}
}

// assertionTestKeys returns keys assertion_key must refuse (RSA, and ECDSA
// on P-384) in PKCS#8, and an app for the configs that use them.
func assertionTestKeys() (rsaDER, p384DER []byte, app []App) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsaDER, _ = x509.MarshalPKCS8PrivateKey(rsaKey)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ = x509.MarshalPKCS8PrivateKey(p384)
	return rsaDER, p384DER, []App{{AppID: "wx1", AppSecret: "s"}}
}

// certificatePEM is a PEM block that is not a private key.
var certificatePEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}))

// The assertion's header may not be a header the upstream reads for
// something else, in wechat_auth and in the receivers' deliveries alike;
// the error names the handler and the header.
func TestAssertionHeaderMustBeFree(t *testing.T) {
	storage, _ := json.Marshal(map[string]string{"module": "file_system", "root": t.TempDir()})
	ctx, err := caddy.ProvisionContext(&caddy.Config{StorageRaw: storage})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		header, want string
	}{
		{"x-wx-openid", `wechat_auth: assertion header "x-wx-openid" is already used for something else`},
		{"Authorization", `wechat_auth: assertion header "Authorization" is already used for something else`},
		{"X Identity", `wechat_auth: assertion header "X Identity" is not a valid header name`},
	} {
		h := &Handler{Sandbox: true, SigningKey: testSigningKey, Assertion: true, AssertionHeader: tc.header}
		if err := h.Provision(ctx); err == nil || err.Error() != tc.want {
			t.Errorf("assertion header %q: error %v, want %q", tc.header, err, tc.want)
		}
	}
	for _, tc := range []struct {
		header, want string
	}{
		{"X-WX-EVENT-ID", `wechat_push: assertion header "X-WX-EVENT-ID" is already used for something else`},
		{"X-Push-Extra", `wechat_push: assertion header "X-Push-Extra" is already used for something else`},
	} {
		if _, err := deliverySigner(ctx, "wechat_push", true, true, tc.header, "", "X-Push-Extra"); err == nil || err.Error() != tc.want {
			t.Errorf("delivery assertion header %q: error %v, want %q", tc.header, err, tc.want)
		}
	}
	s, err := deliverySigner(ctx, "wechat_push", true, true, "", "")
	if err != nil || http.CanonicalHeaderKey(s.Header()) != "X-Wx-Assertion" {
		t.Fatalf("default delivery assertion: %v, %v", s, err)
	}
	h := &Handler{Sandbox: true, SigningKey: testSigningKey, Assertion: true}
	provisionOn(t, h, t.TempDir())
	if h.assertion.Header() != "X-Wx-Assertion" || h.AssertionHeader != assertion.DefaultHeader {
		t.Fatalf("default assertion header %q (config %q)", h.assertion.Header(), h.AssertionHeader)
	}
}
