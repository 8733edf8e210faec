package outbox

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/redistest"
	"github.com/caddyserver/certmagic"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// upstream is a test upstream that counts deliveries by event id.
type upstream struct {
	*httptest.Server
	down  atomic.Bool   // answer 503
	block chan struct{} // when set, requests wait for it to close
	got   chan string   // each request's event id, as it arrives

	mu        sync.Mutex
	counts    map[string]int // 2xx answers by event id
	bodies    map[string]string
	onRequest func(*http.Request) // when set, sees each request first
}

func newUpstream(t testing.TB) *upstream {
	u := &upstream{got: make(chan string, 100), counts: map[string]int{}, bodies: map[string]string{}}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-WX-EVENT-ID")
		body, _ := io.ReadAll(r.Body)
		select {
		case u.got <- id:
		default:
		}
		u.mu.Lock()
		block, onRequest := u.block, u.onRequest
		u.mu.Unlock()
		if onRequest != nil {
			onRequest(r)
		}
		if block != nil {
			select {
			case <-block:
			case <-r.Context().Done():
				return
			}
		}
		if u.down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		u.mu.Lock()
		u.counts[id]++
		u.bodies[id] = string(body)
		u.mu.Unlock()
		io.WriteString(w, "reply to "+id)
	}))
	t.Cleanup(u.Close)
	return u
}

// silentUpstream is an upstream that never answers (until the test ends).
func silentUpstream(t testing.TB) *upstream {
	up := newUpstream(t)
	up.mu.Lock()
	up.block = make(chan struct{})
	up.mu.Unlock()
	t.Cleanup(func() { close(up.block) })
	return up
}

func (u *upstream) count(id string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.counts[id]
}

// waitCount waits until id was delivered n times.
func (u *upstream) waitCount(t *testing.T, id string, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for u.count(id) < n {
		if time.Now().After(deadline) {
			t.Fatalf("event %s delivered %d times after %v, want %d", id, u.count(id), within, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (u *upstream) event(id string) Event {
	return Event{
		Kind: "push", ID: id, To: u.URL + "/push",
		Header: http.Header{"Content-Type": {"text/xml"}, "X-Wx-Event-Id": {id}, "X-Wx-Source": {"wx_push"}},
		Body:   []byte("<xml><secret>body of " + id + "</secret></xml>"),
	}
}

// counter is an Observer for tests.
type counter struct {
	mu      sync.Mutex
	results map[string]int
	pending map[string]int
}

func newCounter() *counter { return &counter{results: map[string]int{}, pending: map[string]int{}} }

func (c *counter) Delivery(kind, result string) {
	c.mu.Lock()
	c.results[kind+"/"+result]++
	c.mu.Unlock()
}

func (c *counter) Pending(kind string, n int) {
	c.mu.Lock()
	c.pending[kind] = n
	c.mu.Unlock()
}

func (c *counter) get(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.results[key]
}

func (c *counter) pendingOf(kind string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending[kind]
}

// testConfig retries every 100 ms and polls often.
func testConfig(obs Observer, log *zap.Logger) Config {
	return Config{
		Observer: obs, Logger: log,
		Timeout: time.Second, Lease: 1500 * time.Millisecond,
		PollInterval: 20 * time.Millisecond,
		Backoff:      func(int) time.Duration { return 100 * time.Millisecond },
	}
}

// backend makes stores of one kind; stores made by one backend share
// their data, as instances sharing Redis or a storage directory do.
type backend struct {
	name  string
	store func(t *testing.T) Store
	keys  func(t *testing.T) int // how many outbox entries the backend holds
	admin *redis.Client          // Redis as its own administrator (redis only)
}

// testPrefix is where wechat_push keeps its outbox (redisPrefix("push")).
const testPrefix = "wechat_auth:push:"

// redisBackend's stores connect as the user docs/redis.md makes, with
// its ACL, so every outbox test shows that ACL is enough.
func redisBackend(t *testing.T) backend {
	srv := redistest.Start(t)
	srv.SetUser(t, redistest.ACL)
	c := srv.Client()
	t.Cleanup(func() { c.Close() })
	return backend{
		name: "redis",
		store: func(t *testing.T) Store {
			client := redis.NewClient(&redis.Options{Addr: srv.Addr, Username: redistest.ACLUser, Password: redistest.ACLPassword})
			t.Cleanup(func() { client.Close() })
			return RedisStore(client, testPrefix, nil)
		},
		keys: func(t *testing.T) int {
			return int(c.HLen(context.Background(), testPrefix+"{outbox}:events").Val())
		},
		admin: c,
	}
}

func storageBackend(t *testing.T) backend {
	dir := t.TempDir()
	fs := &certmagic.FileStorage{Path: dir}
	return backend{
		name:  "storage",
		store: func(t *testing.T) Store { return testStorageStore(t, fs, "outbox") },
		keys: func(t *testing.T) int {
			names, _ := fs.List(context.Background(), "outbox", true)
			n := 0
			for _, name := range names {
				if strings.HasSuffix(name, ".json") {
					n++
				}
			}
			return n
		},
	}
}

func backends(t *testing.T) []backend {
	return []backend{redisBackend(t), storageBackend(t)}
}

// start starts o and stops it when the test ends.
func start(t *testing.T, o *Outbox) *Outbox {
	t.Helper()
	if err := o.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		o.Stop(ctx)
	})
	return o
}

func observedLogger() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return zap.New(core), logs
}

func accept(t *testing.T, o *Outbox, ev Event, want Status) Result {
	t.Helper()
	res, err := o.Accept(context.Background(), ev)
	if err != nil {
		t.Fatalf("Accept %s: %v", ev.ID, err)
	}
	if res.Status != want {
		t.Fatalf("Accept %s = %v, want %v", ev.ID, res.Status, want)
	}
	return res
}

// testStorageStore is StorageStore for a test: the id records it writes
// in the background are written before the test's directories go.
func testStorageStore(t testing.TB, s certmagic.Storage, prefix string) Store {
	st := StorageStore(s, prefix, nil)
	t.Cleanup(st.close)
	return st
}
