package caddytest

// Forward auth: wechat_auth's verify route asked by a front proxy (a real
// nginx, and Caddy's forward_auth in a second site), with the configs of
// docs/forward-auth.md, which these tests read from the file so the doc
// shows what was run.

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

// docBlock returns the fenced block of docs/forward-auth.md that follows
// the line <!-- run: name -->.
func docBlock(t *testing.T, name string) string {
	t.Helper()
	doc := readFile(t, "../docs/forward-auth.md")
	marker := "<!-- run: " + name + " -->\n"
	i := strings.Index(doc, marker)
	if i < 0 {
		t.Fatalf("docs/forward-auth.md has no %q", marker)
	}
	rest := strings.TrimPrefix(doc[i+len(marker):], "<!-- ci: caddy validate -->\n")
	start := strings.Index(rest, "\n") + 1 // past the opening fence
	end := strings.Index(rest[start:], "```")
	if !strings.HasPrefix(rest, "```") || end < 0 {
		t.Fatalf("no fenced block after %q", marker)
	}
	return rest[start : start+end]
}

// replaceAll replaces each old with its new in s, and fails the test when
// an old is missing (the doc changed under the test).
func replaceAll(t *testing.T, s string, oldNew ...string) string {
	t.Helper()
	for i := 0; i < len(oldNew); i += 2 {
		if !strings.Contains(s, oldNew[i]) {
			t.Fatalf("doc block lacks %q:\n%s", oldNew[i], s)
		}
		s = strings.ReplaceAll(s, oldNew[i], oldNew[i+1])
	}
	return s
}

// frontStack is the doc's auth service (wechat_auth, moved to 127.0.0.1:9080) in
// front of a fake WeChat, with extra site blocks, and a raw upstream.
type frontStack struct {
	WeChat   *wechattest.Server
	Upstream *upstream
}

const authBase = "http://127.0.0.1:9080"

// authCaddy returns the doc's auth-service site with the test's WeChat,
// secret and signing key, and directive lines added.
func authCaddy(t *testing.T, wechatURL, directive string) string {
	return replaceAll(t, docBlock(t, "auth-caddy"),
		"{\n\tadmin localhost:2190\n}\n\n", "", // the tests' global options set the admin address
		"http://:8190", "http://:9080",
		"wx1234567890abcdef", testAppID,
		"app_secret {env.WECHAT_APP_SECRET}", fmt.Sprintf("app_secret %s\n\t\tapi_base %s\n\t\tsigning_key %s\n\t\ttimeout %s\n%s",
			testSecret, wechatURL, testSigningKey, testTimeout, directive))
}

func startFrontStack(t *testing.T, directive string, sites func(upstreamAddr string) string) *frontStack {
	t.Helper()
	fs := &frontStack{Upstream: startUpstream(t)}
	var wechatURL string
	fs.WeChat, wechatURL = startWeChat(t, optsSingleUse)
	fs.WeChat.AddApp(testAppID, testSecret)
	cfg := globalOptions("") + authCaddy(t, wechatURL, directive)
	if sites != nil {
		cfg += sites(fs.Upstream.Addr)
	}
	loadCaddy(t, cfg)
	return fs
}

// frontUser is a user logged in through the front proxy.
type frontUser struct {
	wechattest.User
	Token string
}

func (fs *frontStack) loginThrough(t *testing.T, front string, withUnionID bool) frontUser {
	t.Helper()
	u := wechattest.User{OpenID: randomOpenID()}
	if withUnionID {
		u.UnionID = "u" + randomOpenID()[1:]
	}
	code := "code-" + randomOpenID()[1:12]
	fs.WeChat.AddCode(testAppID, code, u)
	lr := loginAt(t, front, map[string]string{"code": code})
	if lr.OpenID != u.OpenID {
		t.Fatalf("login through %s answered openid %q, want %q", front, lr.OpenID, u.OpenID)
	}
	return frontUser{User: u, Token: lr.Token}
}

// forged are identity headers a client sends to claim another identity, in
// the spellings front proxies and CGI-style upstreams read alike.
func forged(token string) http.Header {
	h := bearer(token)
	for k, v := range map[string]string{
		"X-WX-OPENID":    "oForged",
		"X-WX-APPID":     "wxForged",
		"X-WX-UNIONID":   "uForged",
		"X-WX-SOURCE":    "forged",
		"X-WX-ASSERTION": "forged",
		"X_WX_UNIONID":   "uForged",
		"X_WX_OPENID":    "oForged",
	} {
		h[k] = []string{v}
	}
	return h
}

// jwksKeys fetches jwks.json and returns its keys by kid.
func jwksKeys(t *testing.T, url string) map[string]*ecdsa.PublicKey {
	t.Helper()
	r := get(t, url, "")
	wantStatus(t, r, http.StatusOK)
	var set struct {
		Keys []struct{ Kty, Crv, X, Y, Kid, Use, Alg string } `json:"keys"`
	}
	if err := json.Unmarshal(r.Body, &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("jwks.json %s: %v", r.Body, err)
	}
	keys := map[string]*ecdsa.PublicKey{}
	for _, k := range set.Keys {
		x, _ := base64.RawURLEncoding.DecodeString(k.X)
		y, _ := base64.RawURLEncoding.DecodeString(k.Y)
		if k.Kty != "EC" || k.Crv != "P-256" || k.Use != "sig" || k.Alg != "ES256" || len(x) != 32 || len(y) != 32 {
			t.Fatalf("jwks.json key %+v", k)
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			t.Fatalf("jwks.json key %+v: %v", k, err)
		}
		keys[k.Kid] = pub
	}
	return keys
}

// checkAssertion verifies an assertion against keys and checks its claims
// against the user and the token.
func checkAssertion(t *testing.T, keys map[string]*ecdsa.PublicKey, assertion string, u frontUser) {
	t.Helper()
	c := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(assertion, c, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		if k := keys[kid]; k != nil {
			return k, nil
		}
		return nil, fmt.Errorf("unknown kid %q", kid)
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer("wechat_auth"), jwt.WithAudience(testAppID), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	if err != nil {
		t.Fatalf("assertion does not verify against jwks.json: %v", err)
	}
	wantAssertionClaims(t, c, u)
}

func wantAssertionClaims(t *testing.T, c jwt.MapClaims, u frontUser) {
	t.Helper()
	if c["sub"] != u.OpenID || c["aud"] != testAppID || c["iss"] != "wechat_auth" {
		t.Errorf("assertion claims %v, want sub %s aud %s iss wechat_auth", c, u.OpenID, testAppID)
	}
	if got, ok := c["unionid"]; u.UnionID != "" && got != u.UnionID || u.UnionID == "" && ok {
		t.Errorf("assertion unionid %v, want %q", got, u.UnionID)
	}
	exp, err1 := c.GetExpirationTime()
	iat, err2 := c.GetIssuedAt()
	tokExp, err3 := claimsOf(t, u.Token).GetExpirationTime()
	if err1 != nil || err2 != nil || err3 != nil || exp == nil || iat == nil {
		t.Fatalf("assertion exp/iat unreadable: %v", c)
	}
	if exp.After(tokExp.Time) {
		t.Errorf("assertion exp %v is later than the token's %v", exp, tokExp)
	}
	if d := time.Since(iat.Time); d < -time.Second || d > time.Minute {
		t.Errorf("assertion iat %v is not now", iat)
	}
}

// wantIdentity checks what the upstream received: exactly one X-Wx-Openid,
// the real one, the unionid only when the user has one, and no forged
// identity header in any spelling.
func wantIdentity(t *testing.T, seen seenRequest, u frontUser) {
	t.Helper()
	if got := seen.Header["X-Wx-Openid"]; len(got) != 1 || got[0] != u.OpenID {
		t.Errorf("upstream X-Wx-Openid %q, want exactly [%s]", got, u.OpenID)
	}
	if got := seen.Header["X-Wx-Appid"]; len(got) != 1 || got[0] != testAppID {
		t.Errorf("upstream X-Wx-Appid %q", got)
	}
	got := seen.Header["X-Wx-Unionid"]
	if u.UnionID != "" && (len(got) != 1 || got[0] != u.UnionID) || u.UnionID == "" && got != nil {
		t.Errorf("upstream X-Wx-Unionid %q, want %q", got, u.UnionID)
	}
	for k, vals := range seen.Header {
		folded := strings.ToLower(aliasFolder.Replace(k))
		if !strings.HasPrefix(folded, "x-wx-") {
			continue
		}
		for _, v := range vals {
			if strings.Contains(strings.ToLower(v), "forged") {
				t.Errorf("a forged %s: %q reached the upstream", k, v)
			}
		}
		if folded == "x-wx-openid" && k != "X-Wx-Openid" || folded == "x-wx-unionid" && k != "X-Wx-Unionid" {
			t.Errorf("upstream received %s too", k)
		}
	}
	if a := seen.Header.Get("Authorization"); a != "" {
		t.Errorf("the token reached the upstream: %q", a)
	}
}

// aliasFolder reads as '-' each character that CGI-style backends turn
// into '_' as they do '-'.
var aliasFolder = strings.NewReplacer("!", "-", "#", "-", "$", "-", "%", "-", "&", "-", "'", "-", "*", "-",
	"+", "-", ".", "-", "^", "-", "_", "-", "`", "-", "|", "-", "~", "-")

// checkFront runs the front proxy scenario: logins through the front,
// identity to the upstream, forged headers dropped, the 401s.
func checkFront(t *testing.T, fs *frontStack, front string) {
	keys := jwksKeys(t, front+"/wx/jwks.json")
	for _, withUnionID := range []bool{true, false} {
		t.Run(fmt.Sprintf("unionid=%v", withUnionID), func(t *testing.T) {
			u := fs.loginThrough(t, front, withUnionID)
			r := send(t, http.MethodGet, front+"/api/orders?page=1", forged(u.Token), "")
			wantStatus(t, r, http.StatusOK)
			seen := r.Seen(t)
			if seen.Path != "/api/orders" {
				t.Errorf("upstream path %q", seen.Path)
			}
			wantIdentity(t, seen, u)
			checkAssertion(t, keys, seen.Header.Get("X-Wx-Assertion"), u)

			// A POST with a body: the subrequest does not wait for it.
			h := forged(u.Token)
			h.Set("Content-Type", "application/json")
			start := time.Now()
			r = send(t, http.MethodPost, front+"/api/orders", h, `{"item":42}`)
			wantStatus(t, r, http.StatusOK)
			if seen = r.Seen(t); seen.Body != `{"item":42}` || seen.Method != http.MethodPost {
				t.Errorf("upstream got %s %q", seen.Method, seen.Body)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("a POST through the front took %v", took)
			}
			wantIdentity(t, seen, u)

			// Logged out through the front: 401, not 500.
			before := fs.Upstream.Count()
			wantStatus(t, send(t, http.MethodPost, front+"/wx/logout", bearer(u.Token), ""), http.StatusNoContent)
			r = send(t, http.MethodGet, front+"/api/orders", forged(u.Token), "")
			want401(t, r, "invalid_token")
			if fs.Upstream.Count() != before {
				t.Error("the upstream was called for a revoked token")
			}
		})
	}
	before := fs.Upstream.Count()
	h := forged("")
	want401(t, send(t, http.MethodGet, front+"/api/orders", h, ""), "unauthorized")
	want401(t, get(t, front+"/api/orders", "not.a.token"), "invalid_token")
	if fs.Upstream.Count() != before {
		t.Error("the upstream was called without a valid token")
	}
}

// want401 checks a refusal passed on by a front proxy: wechat_auth's 401,
// its JSON body and its challenge, once.
func want401(t *testing.T, r *reply, code string) {
	t.Helper()
	if n := len(r.Header.Values("WWW-Authenticate")); n != 1 {
		t.Errorf("%d WWW-Authenticate headers, want 1: %q", n, r.Header.Values("WWW-Authenticate"))
	}
	wantError(t, r, http.StatusUnauthorized, code)
}

func TestNginxAuthRequestFrontsWechatAuth(t *testing.T) {
	fs := startFrontStack(t, "", nil)
	front := startNginx(t, replaceAll(t, docBlock(t, "nginx"),
		"listen 127.0.0.1:8180;", "listen 127.0.0.1:{{PORT}};",
		"127.0.0.1:8190", "127.0.0.1:9080",
		"127.0.0.1:8000", fs.Upstream.Addr))
	// The 401 carries wechat_auth's JSON body and its challenge once, as
	// behind Caddy: what the mini program helper reads to log in again.
	checkFront(t, fs, front)

	// With its defaults nginx drops every other alias of an identity
	// header too, as docs/forward-auth.md says.
	u := fs.loginThrough(t, front, false)
	h := forged(u.Token)
	for _, k := range []string{"X.WX.OPENID", "X~WX~OPENID", "X+Wx+Unionid", "x|wx|openid"} {
		h[k] = []string{"oForged"}
	}
	wantIdentity(t, send(t, http.MethodGet, front+"/api/orders", h, "").Seen(t), u)

	// The doc's config drops the other X-WX-* headers Cloud Hosting or
	// wechat_auth set, which an app written for either may read, in any
	// case, sent twice, or spelt with '_'.
	h = forged(u.Token)
	for _, k := range cloudHostingHeaders {
		h[k] = []string{"forged", "forged-again"}
		h[strings.ToLower(k)] = []string{"forged-lower"}
		h[strings.ReplaceAll(k, "-", "_")] = []string{"forged"}
	}
	seen := send(t, http.MethodGet, front+"/api/orders", h, "").Seen(t)
	wantIdentity(t, seen, u)
	wantNoCloudHostingHeaders(t, seen)
}

// cloudHostingHeaders are the X-WX-* headers other than the identity ones
// that WeChat Cloud Hosting sets (X-WX-SERVICE is the one its client sends)
// or wechat_auth sets on its push and payment routes.
var cloudHostingHeaders = []string{"X-WX-ENV", "X-WX-FROM-OPENID", "X-WX-FROM-APPID", "X-WX-FROM-UNIONID",
	"X-WX-SERVICE", "X-WX-EVENT-ID", "X-WX-MCHID"}

// wantNoCloudHostingHeaders fails when the upstream got any of
// cloudHostingHeaders, in any spelling.
func wantNoCloudHostingHeaders(t *testing.T, seen seenRequest) {
	t.Helper()
	for k, v := range seen.Header {
		folded := strings.ToUpper(aliasFolder.Replace(k))
		for _, name := range cloudHostingHeaders {
			if folded == name {
				t.Errorf("upstream got the client's %s %q", k, v)
			}
		}
	}
}

func TestCaddyForwardAuthFrontsWechatAuth(t *testing.T) {
	fs := startFrontStack(t, "", func(up string) string {
		return replaceAll(t, docBlock(t, "caddy-front"), "{\n\tadmin localhost:2191\n}\n\n", "", "http://:8181", siteBase2, "127.0.0.1:8190", "127.0.0.1:9080", "127.0.0.1:8000", up)
	})
	checkFront(t, fs, siteBase2)

	// The doc's config drops every other X-WX-* a client sends too.
	u := fs.loginThrough(t, siteBase2, false)
	h := forged(u.Token)
	for _, k := range cloudHostingHeaders {
		h[k] = []string{"forged"}
	}
	seen := send(t, http.MethodGet, siteBase2+"/api/orders", h, "").Seen(t)
	wantIdentity(t, seen, u)
	wantNoCloudHostingHeaders(t, seen)
}

func TestVerifyAnswersFrontProxies(t *testing.T) {
	fs := startFrontStack(t, "", nil)
	u := fs.loginThrough(t, authBase, false)
	for _, method := range []string{"GET", "POST", "HEAD", "DELETE"} {
		r := send(t, method, authBase+"/wx/verify/api/orders", forged(u.Token), "")
		wantStatus(t, r, http.StatusOK)
		if len(r.Body) != 0 || r.Header.Get("X-Wx-Openid") != u.OpenID || r.Header.Get("X-Wx-Appid") != testAppID || r.Header.Get("X-Wx-Unionid") != "" {
			t.Fatalf("%s verify: body %q headers %v", method, r.Body, r.Header)
		}
		if method != http.MethodHead && r.Header.Get("Content-Length") != "0" {
			t.Fatalf("%s verify: Content-Length %q, want 0", method, r.Header.Get("Content-Length"))
		}
		if rm := r.Header.Get("X-Envoy-Auth-Headers-To-Remove"); !strings.Contains(rm, "x-wx-unionid") {
			t.Fatalf("x-envoy-auth-headers-to-remove %q lacks x-wx-unionid", rm)
		}
		checkAssertion(t, jwksKeys(t, authBase+"/wx/jwks.json"), r.Header.Get("X-Wx-Assertion"), u)
	}
	for _, tt := range []struct {
		hdr  http.Header
		code string
	}{{nil, "unauthorized"}, {bearer("not.a.token"), "invalid_token"}} {
		r := send(t, http.MethodGet, authBase+"/wx/verify", tt.hdr, "")
		wantError(t, r, http.StatusUnauthorized, tt.code)
	}

	// nginx's subrequest without `proxy_set_header Content-Length ""`.
	for _, auth := range []string{"Authorization: Bearer " + u.Token + "\r\n", ""} {
		conn, err := net.Dial("tcp", "127.0.0.1:9080")
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		fmt.Fprintf(conn, "POST /wx/verify HTTP/1.1\r\nHost: localhost\r\n%sContent-Type: application/json\r\nContent-Length: 512\r\n\r\n", auth)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("verify did not answer a request whose declared body is not sent: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		conn.Close()
		if want := map[bool]int{true: 200, false: 401}[auth != ""]; resp.StatusCode != want || !resp.Close {
			t.Fatalf("status %d (want %d), close %v", resp.StatusCode, want, resp.Close)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("answered after %v", took)
		}
	}

	// optional: 200 without identity.
	loadCaddy(t, globalOptions("")+authCaddy(t, "http://127.0.0.1:1", "\t\toptional"))
	for _, hdr := range []http.Header{forged(""), forged("not.a.token")} {
		r := send(t, http.MethodGet, authBase+"/wx/verify", hdr, "")
		wantStatus(t, r, http.StatusOK)
		for k := range r.Header {
			if strings.HasPrefix(strings.ToLower(k), "x-wx-") {
				t.Fatalf("anonymous verify answer carries %s", k)
			}
		}
		rm := r.Header.Get("X-Envoy-Auth-Headers-To-Remove")
		for _, n := range []string{"x-wx-openid", "x-wx-appid", "x-wx-unionid", "x-wx-assertion"} {
			if !strings.Contains(rm, n) {
				t.Fatalf("x-envoy-auth-headers-to-remove %q lacks %s", rm, n)
			}
		}
	}
}

// TestAssertionExamplesVerify runs the upstream examples of
// examples/assertion against a live jwks.json: the Go one with golang-jwt,
// the Node one with jose.
func TestAssertionExamplesVerify(t *testing.T) {
	fs := startFrontStack(t, "", nil)
	u := fs.loginThrough(t, authBase, true)
	r := get(t, authBase+"/wx/verify", u.Token)
	wantStatus(t, r, http.StatusOK)
	assertion := r.Header.Get("X-Wx-Assertion")
	jwks := authBase + "/wx/jwks.json"
	tampered := assertion[:len(assertion)-6] + "AAAAAA"

	t.Run("go", func(t *testing.T) {
		runExample(t, u, assertion, tampered, buildGoExample(t), "-jwks", jwks, "-aud", testAppID)
	})
	t.Run("node", func(t *testing.T) {
		runExample(t, u, assertion, tampered, nodeWithJose(t), "../examples/assertion/node/verify.mjs", jwks, testAppID)
	})
}

// runExample runs an example verifier with argv and the assertion as last
// argument: the real one must verify with the user's claims, the tampered
// one must be refused.
func runExample(t *testing.T, u frontUser, good, bad string, argv ...string) {
	t.Helper()
	out, err := exec.Command(argv[0], append(argv[1:], good)...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s refused the assertion: %v\n%s", argv[0], err, stderr)
	}
	c := jwt.MapClaims{}
	if err := json.Unmarshal(out, &c); err != nil {
		t.Fatalf("%s printed %q: %v", argv[0], out, err)
	}
	wantAssertionClaims(t, c, u)
	if out, err := exec.Command(argv[0], append(argv[1:], bad)...).Output(); err == nil {
		t.Fatalf("%s accepted a tampered assertion: %s", argv[0], out)
	}
}

// buildGoExample builds examples/assertion/go.
func buildGoExample(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "verify-assertion")
	if out, err := exec.Command("go", "build", "-o", bin, "../examples/assertion/go").CombinedOutput(); err != nil {
		t.Fatalf("go build examples/assertion/go: %v\n%s", err, out)
	}
	return bin
}

// requireNodeEnv, set to 1, turns a missing node or jose from a skip into
// a failure; CI sets it after `npm ci` in examples/assertion/node.
const requireNodeEnv = "WECHAT_AUTH_REQUIRE_NODE"

// nodeWithJose returns node's path once examples/assertion/node has its
// dependencies installed.
func nodeWithJose(t *testing.T) string {
	t.Helper()
	skip := func(msg string) {
		if os.Getenv(requireNodeEnv) == "1" {
			t.Fatal(msg + ", and " + requireNodeEnv + "=1 requires the Node example")
		}
		t.Skip(msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		skip("node is not installed: apt-get install nodejs npm to run the Node assertion example")
	}
	if _, err := os.Stat("../examples/assertion/node/node_modules/jose"); err != nil {
		skip("jose is not installed: run npm ci in examples/assertion/node to run the Node assertion example")
	}
	return node
}
