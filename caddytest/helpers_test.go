package caddytest

// Helpers shared by every integration test of this package; reuse them
// rather than writing your own (all are unprefixed):
//
//	Caddy
//	  globalOptions(extra)            the global block: admin localhost:2999, skip_install_trust,
//	                                  http_port 9080, https_port 9443, grace_period, the storage (one per test),
//	                                  persist_config off; extra lines appended
//	  wechatSite(addr, directive, upstreamAddr, proxyBlock)
//	                                  a site block: wechat_auth { directive } then reverse_proxy
//	  loadCaddy(t, caddyfile)         InitServer; stops the test when the config does not load;
//	                                  returns once the old config's listeners are closed
//	  loadError(t, caddyfile)         loads a config that must fail and returns Caddy's error text
//	  debugLog(t)                     a temp log file and the global `log` block writing DEBUG to it
//	  readFile(t, path)
//	Harnesses, one per handler
//	  wechat_auth: startStack(t, stackConfig{...}) *stack, a fake WeChat + echoing upstream + Caddy
//	    on siteBase; fields WeChat (*wechattest.Server), WeChatURL, Upstream, Base, Caddyfile.
//	    stackConfig: Apps, Sandbox, Directive, DirectiveOf, ProxyBlock, Upstream (another upstream's address),
//	    Sites (more site blocks), Global, Fake. Built on it: startTwoApps (multiapp),
//	    startSandboxAndProduction (sandbox), startRawStack (spoofing: a raw upstream),
//	    webStack (browser_web: web login with the fake's pages at open_base).
//	    st.addUser(code) / st.addUserWithKey(code, key)   register a login code for a fresh user
//	    st.login(t, code) loginResult   (asserts 200)   st.loginApp(t, appid, code)
//	  wechat_api: startGateway(t, gwConfig{...}) *gwStack (gateway_test.go), startStack with a
//	    wechat_api site on siteBase2 added; g.call(t, method, pathQuery, header, body).
//	  Not built on startStack, on purpose: startFrontStack (frontproxy) loads the docs' recipes
//	  verbatim; multiNew (redis_helpers) runs Caddy processes of its own; startWebSite
//	  (browser_oauth) is a Go site over the weblogin package, no Caddy. The root package's
//	  newSite provisions a Handler in process for the unit tests; it is not this package's.
//	Requests (one family, full URLs: pass st.Base+path)
//	  get(t, url, token)   post(t, url, token, contentType, body)   postJSON(t, url, token, v)
//	  postForm(t, url, token, vals)   all over send(t, method, url, header, body) *reply;
//	  trySend(...) (*reply, error) never retries; sendChunked(t, url, header, body)
//	  loginAt(t, base, fields) loginResult   bearer(token) http.Header
//	  reply: .Status .Header .Body .SentToken, .Object(t), .Seen(t) (the upstream's echo)
//	Pieces
//	  startWeChat(t, opts) (*wechattest.Server, url)   startUpstream(t) *upstream (.Addr, .Last(), .Count())
//	  wantStatus(t, r, status)   wantError(t, r, status, code)   (401s also check WWW-Authenticate)
//	  getTimes(t, n, url, token)   wantFast(t, what, took, limit)   within(d, cond)
//	  forgeToken(t, method, key, claims)   claimsOf(t, token)   randomOpenID()   wechattestUser()
//	  encryptFor(t, sessionKey, v) (encryptedData, iv)   jsonEqual(t, a, b)   toValues(fields)
//	  mustJSON(t, v)   testPhoneOf(digits)   scrapeMetrics(t)   metricTotal(text, name, labelSubstrings...)
//	Constants: adminURL, siteBase, siteBase2 (port 9081), testAppID (the vector's app), testSecret,
//	  testSigningKey, testTimeout, optsSingleUse.

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	caddytest "github.com/caddyserver/caddy/v2/caddytest"
	"github.com/golang-jwt/jwt/v5"

	_ "github.com/caddy-wechat/wechatauth"
	"github.com/caddy-wechat/wechatauth/wechattest"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

const (
	adminURL  = "http://localhost:2999"
	siteBase  = "http://localhost:9080"
	siteBase2 = "http://localhost:9081"

	// testAppID is the app of WeChat's published decryption vector, so the
	// vector's watermark matches.
	testAppID      = "wx4f4bc4dec97d474b"
	testSecret     = "app-secret-7f3c9a1e5b2d4c6e8a0f1b3d5e7a9c2e"
	testSigningKey = "signing-key-for-integration-tests-5d1f8e2a9c"
	// testTimeout is the WeChat timeout configured in the tests, short so
	// failures of a hanging WeChat show quickly.
	testTimeout = 2 * time.Second
)

// httpClient talks to Caddy. No proxy from the environment: everything is
// loopback.
var httpClient = &http.Client{
	Timeout: 15 * time.Second,
	Transport: &http.Transport{
		Proxy: nil,
		// A fresh connection per request: a keep-alive connection that
		// Caddy's config reload closes just as a POST is sent fails the
		// POST (it cannot be retried), which is a client matter.
		DisableKeepAlives: true,
	},
}

// storageDir is the in-process Caddy's storage for this test run, made
// and removed by TestMain: the tests never write into the user's own Caddy
// storage, where a demo or a real Caddy would take up what they left, nor
// (persist_config off) over the user's autosaved config.
var storageDir string

// isolatedTest is the top-level test whose storage the in-process Caddy
// last loaded.
var isolatedTest string

// isolate gives caddyfile the storage of t's top-level test, inside
// storageDir, so that what one test leaves behind (events still queued
// for an upstream it has closed, generated keys) never reaches another;
// its subtests share it. A test's first load is preceded by a config with
// no sites: the previous test's handlers are cleaned up and its delivery
// outboxes, which outlive reloads, stop.
func isolate(t *testing.T, caddyfile string) string {
	t.Helper()
	shared := "storage file_system " + storageDir + "\n"
	if !strings.Contains(caddyfile, shared) {
		return caddyfile // loadError's configs, or a storage of its own
	}
	root, _, _ := strings.Cut(t.Name(), "/")
	dir := filepath.Join(storageDir, root)
	if root != isolatedTest {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		caddytest.NewTester(t).InitServer(globalOptions(""), "caddyfile")
		// The load that follows at once must not meet the admin
		// listener this one is closing.
		waitOldListenersClosed()
		isolatedTest = root
	}
	return strings.Replace(caddyfile, shared, "storage file_system "+dir+"\n", 1)
}

// globalOptions returns Caddy's global options block for the tests, with
// extra lines (such as a log block) appended.
func globalOptions(extra string) string {
	return `{
	admin localhost:2999
	skip_install_trust
	http_port 9080
	https_port 9443
	grace_period 1s
	default_bind 127.0.0.1
	storage file_system ` + storageDir + `
	persist_config off
` + extra + `
}
`
}

// wechatSite returns a site block: wechat_auth with directive lines, then a
// reverse_proxy to upstreamAddr with proxyBlock lines inside it.
func wechatSite(addr, directive, upstreamAddr, proxyBlock string) string {
	return fmt.Sprintf(`
%s {
	wechat_auth {
%s
	}
	reverse_proxy %s {
%s
	}
}
`, addr, directive, upstreamAddr, proxyBlock)
}

// loadCaddy loads caddyfile into the test Caddy (starting it on first use)
// and stops the test if it does not load.
func loadCaddy(t *testing.T, caddyfile string) *caddytest.Tester {
	t.Helper()
	caddyfile = isolate(t, caddyfile)
	tester := caddytest.NewTester(t)
	tester.InitServer(caddyfile, "caddyfile")
	if t.Failed() {
		t.Fatalf("Caddy did not load the config:\n%s", caddyfile)
	}
	// The old config's servers close their idle keep-alive connections
	// while shutting down; a POST sent on one of those at that instant
	// reads EOF and is not retried. Start afresh on the new servers.
	httpClient.CloseIdleConnections()
	waitOldListenersClosed()
	return tester
}

// testPorts are the in-process Caddy's ports, as /proc/net/tcp writes
// them: 9080, 9443 and the admin's 2999.
var testPorts = []string{":2378", ":24E3", ":0BB7"}

// waitOldListenersClosed waits, up to 2 s, until no two listening sockets
// share one of the test ports' addresses. Caddy opens each config's
// listeners with SO_REUSEPORT and closes the previous config's as it
// shuts that down, which may be after the load has returned; a new
// connection the kernel hands to the closing socket is reset, and the
// request on it reads EOF. Linux only (/proc/net/tcp); elsewhere it
// returns at once.
func waitOldListenersClosed() {
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		if !sharedTestListener() {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// sharedTestListener reports whether two listening sockets share an
// address on a test port (false when /proc/net/tcp cannot be read).
func sharedTestListener() bool {
	seen := make(map[string]bool)
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			return false
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line) // sl local_address rem_address st ...
			if len(f) < 4 || f[3] != "0A" {
				continue // not listening
			}
			for _, port := range testPorts {
				if strings.HasSuffix(f[1], port) {
					if seen[f[1]] {
						return true
					}
					seen[f[1]] = true
				}
			}
		}
	}
	return false
}

// loadError loads a Caddyfile that must be refused and returns Caddy's
// error text. The config running before stays running.
func loadError(t *testing.T, caddyfile string) string {
	t.Helper()
	// Make sure the test Caddy runs, with a harmless config.
	loadCaddy(t, globalOptions("")+"\nhttp://localhost:9080 {\n\trespond ok\n}\n")
	return refusedLoad(t, "text/caddyfile", caddyfile)
}

// refusedLoad posts config (of contentType: text/caddyfile or
// application/json) to the running test Caddy, which must refuse it, and
// returns Caddy's error text.
func refusedLoad(t *testing.T, contentType, config string) string {
	t.Helper()
	resp, err := httpClient.Post(adminURL+"/load", contentType, strings.NewReader(config))
	if err != nil {
		t.Fatalf("POST /load: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		httpClient.CloseIdleConnections()
		t.Fatalf("Caddy loaded a config it must refuse:\n%s", config)
	}
	return string(body)
}

// debugLog returns a fresh log file and the global option block that makes
// Caddy log everything at DEBUG into it.
func debugLog(t *testing.T) (path, option string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "caddy.log")
	return path, fmt.Sprintf("\tlog {\n\t\toutput file %s\n\t\tlevel DEBUG\n\t}", path)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

// startWeChat serves a fake WeChat API on loopback and returns it with its
// URL, for api_base.
func startWeChat(t *testing.T, opts wechattest.Options) (*wechattest.Server, string) {
	t.Helper()
	fake := wechattest.NewServer(opts)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, srv.URL
}

// seenRequest is a request as the upstream received it.
type seenRequest struct {
	Method string      `json:"method"`
	Path   string      `json:"path"`
	Header http.Header `json:"header"`
	Body   string      `json:"body"`
}

// upstream records the requests it receives and answers each with it, as
// JSON, and the header X-Upstream: echo.
type upstream struct {
	Addr string // host:port for reverse_proxy

	mu   sync.Mutex
	seen []seenRequest
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	u := new(upstream)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sr := seenRequest{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: string(body)}
		u.mu.Lock()
		u.seen = append(u.seen, sr)
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream", "echo")
		json.NewEncoder(w).Encode(sr)
	}))
	t.Cleanup(srv.Close)
	u.Addr = srv.Listener.Addr().String()
	return u
}

// Count returns how many requests the upstream has received.
func (u *upstream) Count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.seen)
}

// CountOf returns how many method requests for path the upstream has
// received: unlike Count, blind to what a browser fetches by itself
// (a favicon, a page it reloads).
func (u *upstream) CountOf(method, path string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, s := range u.seen {
		if s.Method == method && s.Path == path {
			n++
		}
	}
	return n
}

// Last returns the last request the upstream received.
func (u *upstream) Last(t *testing.T) seenRequest {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.seen) == 0 {
		t.Fatal("the upstream received no request")
	}
	return u.seen[len(u.seen)-1]
}

// testApp is a mini program configured in Caddy and known to the fake.
type testApp struct{ ID, Secret string }

// stackConfig describes a test stack.
type stackConfig struct {
	// Apps configured; default one app, testAppID. With several, Caddy
	// gets `app` lines.
	Apps []testApp
	// Sandbox makes the site a sandbox: its first app's id and the
	// signing key only, no secret, api_base or timeout.
	Sandbox bool
	// Directive holds extra lines for the wechat_auth block.
	Directive string
	// DirectiveOf, when set, returns more lines for the wechat_auth block
	// given the running fake WeChat (for lines naming its URL).
	DirectiveOf func(st *stack) string
	// ProxyBlock holds lines for the reverse_proxy block.
	ProxyBlock string
	// Upstream, when set, is the host:port the site proxies to instead of
	// a fresh echoing upstream (the stack's Upstream is then nil).
	Upstream string
	// Sites returns more site blocks for the same Caddyfile (a second
	// wechat_auth site, a wechat_api site), given the running fake WeChat
	// and upstream.
	Sites func(st *stack) string
	// Global holds extra global options (such as a log block).
	Global string
	// Fake sets the fake WeChat's behaviour.
	Fake wechattest.Options
}

// stack is a running fake WeChat, echoing upstream, and Caddy at Base.
type stack struct {
	WeChat    *wechattest.Server
	WeChatURL string
	Upstream  *upstream
	Base      string
	Caddyfile string
}

// startStack starts a fake WeChat and an upstream, and loads Caddy with a
// wechat_auth site on siteBase in front of them (timeout 2s, testSigningKey),
// then cfg.Sites. It is the one harness of wechat_auth in this package.
func startStack(t *testing.T, cfg stackConfig) *stack {
	t.Helper()
	st := &stack{Base: siteBase}
	st.WeChat, st.WeChatURL = startWeChat(t, cfg.Fake)
	upstreamAddr := cfg.Upstream
	if upstreamAddr == "" {
		st.Upstream = startUpstream(t)
		upstreamAddr = st.Upstream.Addr
	}
	if len(cfg.Apps) == 0 {
		cfg.Apps = []testApp{{testAppID, testSecret}}
	}
	if cfg.DirectiveOf != nil {
		cfg.Directive += cfg.DirectiveOf(st)
	}
	var d strings.Builder
	for _, a := range cfg.Apps {
		st.WeChat.AddApp(a.ID, a.Secret)
	}
	switch {
	case cfg.Sandbox:
		fmt.Fprintf(&d, "\t\tsandbox\n\t\tapp_id %s\n\t\tsigning_key %s\n%s", cfg.Apps[0].ID, testSigningKey, cfg.Directive)
	case len(cfg.Apps) == 1:
		fmt.Fprintf(&d, "\t\tapp_id %s\n\t\tapp_secret %s\n", cfg.Apps[0].ID, cfg.Apps[0].Secret)
	default:
		for _, a := range cfg.Apps {
			fmt.Fprintf(&d, "\t\tapp %s %s\n", a.ID, a.Secret)
		}
	}
	if !cfg.Sandbox {
		fmt.Fprintf(&d, "\t\tapi_base %s\n\t\tsigning_key %s\n\t\ttimeout %s\n%s",
			st.WeChatURL, testSigningKey, testTimeout, cfg.Directive)
	}
	st.Caddyfile = globalOptions(cfg.Global) + wechatSite(siteBase, d.String(), upstreamAddr, cfg.ProxyBlock)
	if cfg.Sites != nil {
		st.Caddyfile += cfg.Sites(st)
	}
	loadCaddy(t, st.Caddyfile)
	return st
}

// randomOpenID returns a fresh openid shaped like WeChat's.
func randomOpenID() string {
	var b [21]byte
	rand.Read(b[:])
	return "o" + base64.RawURLEncoding.EncodeToString(b[:])
}

// addUser registers a login code of testAppID (or the stack's first app)
// for a fresh user with a unionid and a random session_key.
func (st *stack) addUser(loginCode string) wechattest.User {
	return st.WeChat.AddCode(testAppID, loginCode, wechattest.User{OpenID: randomOpenID(), UnionID: "u" + randomOpenID()[1:]})
}

// addUserWithKey registers a login code for a fresh user whose session_key
// is key.
func (st *stack) addUserWithKey(loginCode, key string) wechattest.User {
	return st.WeChat.AddCode(testAppID, loginCode, wechattest.User{OpenID: randomOpenID(), SessionKey: key})
}

// loginResult is the answer of a successful login or refresh.
type loginResult struct {
	Token     string `json:"token"`
	TokenType string `json:"token_type"`
	ExpiresIn int64  `json:"expires_in"`
	OpenID    string `json:"openid"`
	UnionID   string `json:"unionid"`
}

// login logs in with code (JSON body) and requires a 200.
func (st *stack) login(t *testing.T, code string) loginResult {
	t.Helper()
	return loginAt(t, st.Base, map[string]string{"code": code})
}

// loginApp logs in to the app appid with code.
func (st *stack) loginApp(t *testing.T, appid, code string) loginResult {
	t.Helper()
	return loginAt(t, st.Base, map[string]string{"code": code, "appid": appid})
}

// loginAt posts fields as JSON to base/wx/login and requires a 200 with a
// token.
func loginAt(t *testing.T, base string, fields map[string]string) loginResult {
	t.Helper()
	r := postJSON(t, base+"/wx/login", "", fields)
	wantStatus(t, r, http.StatusOK)
	var lr loginResult
	if err := json.Unmarshal(r.Body, &lr); err != nil || lr.Token == "" {
		t.Fatalf("login answer has no token: %s", r.Body)
	}
	return lr
}

// reply is a response read in full.
type reply struct {
	Status int
	Header http.Header
	Body   []byte

	// SentToken: the request carried an "Authorization: Bearer" header.
	SentToken bool
}

// Object decodes the body as a JSON object.
func (r *reply) Object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("answer is not a JSON object (%v): %q", err, r.Body)
	}
	return m
}

// Seen decodes the body as the upstream's echo of the request it received.
func (r *reply) Seen(t *testing.T) seenRequest {
	t.Helper()
	if r.Header.Get("X-Upstream") != "echo" {
		t.Fatalf("answer is not from the upstream: %d %s", r.Status, r.Body)
	}
	var sr seenRequest
	if err := json.Unmarshal(r.Body, &sr); err != nil {
		t.Fatalf("upstream echo: %v", err)
	}
	return sr
}

func bearer(token string) http.Header {
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return h
}

// send makes one request and reads the answer; a transport error stops
// the test. A connection that the server closed before answering is tried
// once more: right after a config load the old server may accept a
// connection as it shuts down (stock Caddy does the same), and a POST on it
// is not retried by net/http. The module cannot cause that: it answers or
// Caddy answers 500 for it. trySend (the hostile-input test) never retries.
func send(t *testing.T, method, u string, header http.Header, body string) *reply {
	t.Helper()
	r, err := trySend(method, u, header, body)
	if err != nil && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
		t.Logf("%s %s: %v; trying once more on a new connection", method, u, err)
		r, err = trySend(method, u, header, body)
	}
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	return r
}

// getTimes makes n GET requests to url(i) with token, requires each to be
// answered 200, and returns how long each took.
func getTimes(t *testing.T, n int, url func(i int) string, token string) []time.Duration {
	t.Helper()
	took := make([]time.Duration, 0, n)
	for i := range n {
		start := time.Now()
		r := get(t, url(i), token)
		took = append(took, time.Since(start))
		wantStatus(t, r, http.StatusOK)
	}
	return took
}

// wantFast fails when more than one of the durations reaches limit, or any
// reaches ten times it. A request that waits on a hung peer is slow every
// time, by seconds; one scheduling hiccup on a loaded CI machine is not.
func wantFast(t *testing.T, what string, took []time.Duration, limit time.Duration) {
	t.Helper()
	slow := 0
	for _, d := range took {
		if d >= limit {
			slow++
		}
		if d >= 10*limit {
			t.Errorf("%s took %v, want under %v (all: %v)", what, d, limit, took)
			return
		}
	}
	if slow > 1 {
		t.Errorf("%d of %d of %s took %v or more, want under it (all: %v)", slow, len(took), what, limit, took)
	}
}

// trySend is send that returns transport errors.
func trySend(method, u string, header http.Header, body string) (*reply, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	return do(req)
}

// do sends req with httpClient and reads the answer in full.
func do(req *http.Request) (*reply, error) {
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &reply{Status: resp.StatusCode, Header: resp.Header, Body: b, SentToken: sentBearer(req)}, nil
}

// get sends a GET to u with token (none when empty).
func get(t *testing.T, u, token string) *reply {
	t.Helper()
	return send(t, http.MethodGet, u, bearer(token), "")
}

// post sends body to u with token and contentType (none when empty).
func post(t *testing.T, u, token, contentType, body string) *reply {
	t.Helper()
	h := bearer(token)
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	return send(t, http.MethodPost, u, h, body)
}

// postJSON posts v, encoded as JSON, to u with token.
func postJSON(t *testing.T, u, token string, v any) *reply {
	t.Helper()
	return post(t, u, token, "application/json", string(mustJSON(t, v)))
}

// postForm posts vals, form-encoded, to u with token.
func postForm(t *testing.T, u, token string, vals url.Values) *reply {
	t.Helper()
	return post(t, u, token, "application/x-www-form-urlencoded", vals.Encode())
}

// wantStatus stops the test unless r has status.
func wantStatus(t *testing.T, r *reply, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body: %s", r.Status, status, r.Body)
	}
}

// wantError checks an error answer: status, a JSON body with
// the error code and a message, and on 401 the WWW-Authenticate challenge
// (with error="invalid_token" unless no token was sent).
func wantError(t *testing.T, r *reply, status int, code string) map[string]any {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d (%s); body: %s", r.Status, status, code, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	body := r.Object(t)
	if body["error"] != code {
		t.Errorf("error %v, want %q; body: %s", body["error"], code, r.Body)
	}
	if msg, _ := body["message"].(string); msg == "" {
		t.Errorf("error answer has no message: %s", r.Body)
	}
	if status == http.StatusUnauthorized {
		auth := r.Header.Get("WWW-Authenticate")
		if !strings.HasPrefix(auth, `Bearer realm="wechat_auth"`) {
			t.Errorf("WWW-Authenticate %q, want Bearer realm=\"wechat_auth\"…", auth)
		}
		// error="invalid_token" exactly where a token was sent,
		// even when what failed is a phone code; a missing token and a
		// login's refused code name no error.
		hasErr := strings.Contains(auth, `error="invalid_token"`)
		tokenSent := r.SentToken
		if code == "invalid_token" || code == "session_expired" {
			tokenSent = true // these codes only answer a token
		}
		if !tokenSent && hasErr {
			t.Errorf("WWW-Authenticate %q names an error though no token was sent", auth)
		}
		if tokenSent && !hasErr {
			t.Errorf("WWW-Authenticate %q lacks error=\"invalid_token\"", auth)
		}
	}
	return body
}

// sentBearer reports whether req carried a Bearer token.
func sentBearer(req *http.Request) bool {
	v := req.Header.Get("Authorization")
	return len(v) > len("Bearer ") && strings.EqualFold(v[:len("Bearer ")], "Bearer ") && strings.TrimSpace(v[len("Bearer "):]) != ""
}

// claimsOf returns a token's claims without verifying it.
func claimsOf(t *testing.T, token string) jwt.MapClaims {
	t.Helper()
	c := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, c); err != nil {
		t.Fatalf("token does not parse: %v", err)
	}
	return c
}

// forgeToken signs claims with method and key.
func forgeToken(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("forge token: %v", err)
	}
	return s
}

// scrapeMetrics returns the admin endpoint's /metrics text.
func scrapeMetrics(t *testing.T) string {
	t.Helper()
	r := get(t, adminURL+"/metrics", "")
	wantStatus(t, r, http.StatusOK)
	return string(r.Body)
}

// metricTotal sums the samples of metric name (exactly that name) whose
// label set contains every one of labels (written as `result="ok"`).
func metricTotal(text, name string, labels ...string) float64 {
	var sum float64
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "#") || !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		fields := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// jsonEqual reports whether a and b are the same JSON value.
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("not JSON: %q", a)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("not JSON: %q", b)
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

// encryptFor encrypts a JSON value with a session key, as WeChat does.
func encryptFor(t *testing.T, sessionKey string, v any) (encryptedData, iv string) {
	t.Helper()
	plain, ok := v.([]byte)
	if !ok {
		var err error
		if plain, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	enc, ivs, err := wechattest.Encrypt(sessionKey, plain)
	if err != nil {
		t.Fatal(err)
	}
	return enc, ivs
}

// toValues turns fields into a form.
func toValues(fields map[string]string) url.Values {
	v := url.Values{}
	for k, s := range fields {
		v.Set(k, s)
	}
	return v
}

// sendChunked posts body without a Content-Length (chunked), as a client
// streaming an upload does.
func sendChunked(t *testing.T, u string, header http.Header, body string) *reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, io.MultiReader(strings.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header.Clone()
	req.ContentLength = -1
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s (chunked): %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &reply{Status: resp.StatusCode, Header: resp.Header, Body: b, SentToken: sentBearer(req)}
}

// optsSingleUse is the fake WeChat's default: registered codes only, each
// usable once, as WeChat's.
var optsSingleUse = wechattest.Options{}

// wechattestUser returns a fresh user with a random session_key.
func wechattestUser() wechattest.User { return wechattest.User{OpenID: randomOpenID()} }

// testPhoneOf is a mainland number as WeChat returns it.
func testPhoneOf(digits string) wechattest.Phone {
	return wechattest.Phone{PhoneNumber: digits, PurePhoneNumber: digits, CountryCode: "86"}
}

// mustJSON encodes v.
func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// within polls cond every 20 ms for up to d and reports whether it held.
func within(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
