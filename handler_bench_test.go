package wechatauth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// benchSigningKey is a fixed key, so provisioning needs no Caddy storage.
const benchSigningKey = "bench-signing-key-0123456789abcdef"

// newBenchHandler provisions a sandbox Handler as Caddy would, with Caddy's
// storage in a temporary directory and only errors logged (the sandbox
// warning would otherwise land in benchmark output).
func newBenchHandler(tb testing.TB, configure func(*Handler)) *Handler {
	tb.Helper()
	ctx := benchContext(tb)
	h := &Handler{Sandbox: true, SigningKey: benchSigningKey}
	if configure != nil {
		configure(h)
	}
	if err := h.Provision(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Cleanup() })
	h.logger = zap.NewNop()
	return h
}

// benchContext is a Caddy context with storage in a temporary directory
// and only errors logged. The contexts of one test share that directory,
// as the configs of one Caddy share its storage (and so, with the memory
// store, the delivery outbox).
func benchContext(tb testing.TB) caddy.Context {
	tb.Helper()
	storage, _ := json.Marshal(map[string]string{"module": "file_system", "root": testStorageDir(tb)})
	ctx, err := caddy.ProvisionContext(&caddy.Config{
		StorageRaw: storage,
		Logging:    &caddy.Logging{Logs: map[string]*caddy.CustomLog{"default": {BaseLog: caddy.BaseLog{Level: "ERROR"}}}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return ctx
}

// storageDirs are the tests' storage directories (testStorageDir).
var storageDirs sync.Map // testing.TB → string

// testStorageDir is tb's storage directory, made by its first call.
func testStorageDir(tb testing.TB) string {
	if dir, ok := storageDirs.Load(tb); ok {
		return dir.(string)
	}
	dir := tb.TempDir()
	storageDirs.Store(tb, dir)
	tb.Cleanup(func() { storageDirs.Delete(tb) })
	return dir
}

// benchLogin logs in through ServeHTTP and returns the token.
func benchLogin(tb testing.TB, h *Handler, code string) string {
	tb.Helper()
	w := newDiscardWriter()
	r := newFormRequest(h.RoutePrefix+"/login", "code="+code)
	if err := h.ServeHTTP(w, r, okHandler{}); err != nil || w.status != http.StatusOK {
		tb.Fatalf("login: status %d, err %v", w.status, err)
	}
	tok := tokenOf(w.body)
	if tok == "" {
		tb.Fatalf("login answered no token: %s", w.body)
	}
	return tok
}

func tokenOf(body []byte) string {
	const key = `"token":"`
	s := string(body)
	i := strings.Index(s, key)
	if i < 0 {
		return ""
	}
	s = s[i+len(key):]
	return s[:strings.IndexByte(s, '"')]
}

func newFormRequest(path, body string) *http.Request {
	r, _ := http.NewRequest(http.MethodPost, "http://example.com"+path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

// okHandler is the trivial next handler: what a proxied request costs is
// then what wechat_auth costs.
type okHandler struct{}

func (okHandler) ServeHTTP(w http.ResponseWriter, _ *http.Request) error {
	w.WriteHeader(http.StatusOK)
	return nil
}

// discardWriter is a ResponseWriter that keeps the status and body and
// whose header map is reused, so a benchmark counts the module's
// allocations rather than the recorder's.
type discardWriter struct {
	hdr    http.Header
	status int
	body   []byte
}

func newDiscardWriter() *discardWriter { return &discardWriter{hdr: make(http.Header)} }

func (w *discardWriter) Header() http.Header { return w.hdr }
func (w *discardWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *discardWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body = append(w.body, b...)
	return len(b), nil
}

func (w *discardWriter) reset() {
	w.status = 0
	w.body = w.body[:0]
}

// miniProgramRequest is a GET as a mini program sends it through WeChat's
// client, with a client trying to set its own identity, and a Caddy
// replacer in its context as Caddy's server puts there.
func miniProgramRequest(token string) *http.Request {
	u, _ := url.Parse("http://api.example.com/api/orders?page=1")
	r := &http.Request{
		Method: http.MethodGet,
		URL:    u,
		Host:   u.Host,
		Header: http.Header{
			"Accept":          {"*/*"},
			"Accept-Encoding": {"gzip, deflate, br"},
			"Accept-Language": {"zh-CN,zh;q=0.9"},
			"Content-Type":    {"application/json"},
			"Referer":         {"https://servicewechat.com/wx4f4bc4dec97d474b/12/page-frame.html"},
			"User-Agent":      {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.44(0x18002c2f) NetType/WIFI Language/zh_CN"},
			"X-Wx-Openid":     {"spoofed"},
		},
	}
	if token != "" {
		r.Header["Authorization"] = []string{"Bearer " + token}
	}
	ctx := &requestContext{Context: context.Background()}
	r = r.WithContext(ctx)
	freshReplacer(r)
	return r
}

// requestContext is the context of a benchmark's request, whose replacer
// freshReplacer swaps: Caddy makes a new replacer for every request, and a
// handler that adds to it must pay for that on every request here too.
type requestContext struct {
	context.Context
	repl *caddy.Replacer
}

func (c *requestContext) Value(key any) any {
	if key == caddy.ReplacerCtxKey {
		return c.repl
	}
	return c.Context.Value(key)
}

// freshReplacer gives r (made by miniProgramRequest) a new replacer in the
// state Caddy's HTTP server hands it to a handler: the default providers
// and one for the http.* placeholders.
func freshReplacer(r *http.Request) {
	c := r.Context().(*requestContext)
	c.repl = caddy.NewReplacer()
	c.repl.Map(func(string) (any, bool) { return nil, false })
}

// BenchmarkProxiedRequest is the hot path: a request with a valid token
// through ServeHTTP to a trivial next handler: identity headers stripped,
// token checked (and its revocation), identity set.
func BenchmarkProxiedRequest(b *testing.B) {
	benchProxied(b, "", nil)
}

// BenchmarkProxiedRequestBaseline is BenchmarkProxiedRequest's loop
// without the handler: the replacer Caddy makes for every request and the
// header resets. Its allocations and time are the benchmark's, not
// wechat_auth's: subtract them from BenchmarkProxiedRequest* figures.
func BenchmarkProxiedRequestBaseline(b *testing.B) {
	p := newProxiedRequest(b, "", nil)
	r, w, auth, spoof := p.r, p.w, p.auth, p.spoof
	b.ReportAllocs()
	for b.Loop() {
		r.Header["Authorization"] = auth
		r.Header["X-Wx-Openid"] = spoof
		freshReplacer(r)
		w.reset()
	}
	// The cleanup's checks expect the handler to have run once.
	p.h.ServeHTTP(w, r, okHandler{})
}

// BenchmarkProxiedRequestParallel is the hot path with as many concurrent
// callers as cores, each with its own token, as under wrk.
func BenchmarkProxiedRequestParallel(b *testing.B) {
	h := newBenchHandler(b, nil)
	var tokens []string
	for i := range 64 {
		tokens = append(tokens, benchLogin(b, h, "bench-user-"+strconv.Itoa(i)))
	}
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := miniProgramRequest(tokens[int(n.Add(1))%len(tokens)])
		auth := r.Header["Authorization"]
		w := newDiscardWriter()
		for pb.Next() {
			r.Header["Authorization"] = auth
			freshReplacer(r)
			w.reset()
			if err := h.ServeHTTP(w, r, okHandler{}); err != nil || w.status != http.StatusOK {
				b.Errorf("status %d, err %v", w.status, err)
				return
			}
		}
	})
}

// BenchmarkTokenVerify is what the hot path would cost per request without
// the cache of verified tokens: parsing and checking the JWT.
func BenchmarkTokenVerify(b *testing.B) {
	h := newBenchHandler(b, nil)
	tok := benchLogin(b, h, "bench-user")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.tokens.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRejectNoToken is the 401 answer to a request without a token.
func BenchmarkRejectNoToken(b *testing.B) {
	benchReject(b, "")
}

// BenchmarkRejectBadSignature is the 401 answer to a well-formed token
// whose signature is wrong: never served from the cache, so it pays a full
// verification every time.
func BenchmarkRejectBadSignature(b *testing.B) {
	h := newBenchHandler(b, nil)
	tok := benchLogin(b, h, "bench-user")
	// Change a character inside the signature (the last one carries
	// padding bits that decoding may ignore).
	c := byte('A')
	if tok[len(tok)-5] == c {
		c = 'B'
	}
	forged := tok[:len(tok)-5] + string(c) + tok[len(tok)-4:]
	benchRejectWith(b, h, forged)
}

func benchReject(b *testing.B, token string) {
	benchRejectWith(b, newBenchHandler(b, nil), token)
}

func benchRejectWith(b *testing.B, h *Handler, token string) {
	r := miniProgramRequest(token)
	auth := r.Header["Authorization"]
	w := newDiscardWriter()
	b.ReportAllocs()
	for b.Loop() {
		if auth != nil {
			r.Header["Authorization"] = auth
		}
		w.reset()
		if err := h.ServeHTTP(w, r, okHandler{}); err != nil || w.status != http.StatusUnauthorized {
			b.Fatalf("status %d, err %v", w.status, err)
		}
	}
}

// BenchmarkLogin is a login through ServeHTTP against the in-process fake
// WeChat, each with a new code: code2session, a new session stored (and
// waited for), a token signed and written.
func BenchmarkLogin(b *testing.B) {
	h := newBenchHandler(b, nil)
	w := newDiscardWriter()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		r := newFormRequest(h.RoutePrefix+"/login", "code=bench-"+strconv.Itoa(i))
		w.reset()
		if err := h.ServeHTTP(w, r, okHandler{}); err != nil || w.status != http.StatusOK {
			b.Fatalf("status %d, err %v: %s", w.status, err, w.body)
		}
	}
}
