package caddytest

// Acceptance point of issue 4 covered here: with the memory store, a config
// reload in the middle of a load run (8 concurrent clients) gives no non-2xx
// answer and no transport error beyond one per keep-alive connection; the
// new config takes effect, max_sessions is resized without dropping the
// session, which still decrypts afterwards.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

// multiSlowUpstream answers 200 after a few milliseconds, so requests are
// in flight when the config changes, and echoes the identity headers it got.
func multiSlowUpstream(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(5 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{
			"X-WX-OPENID":   r.Header.Get("X-WX-OPENID"),
			"X-User-Openid": r.Header.Get("X-User-Openid"),
		})
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func TestReloadUnderLoadKeepsSessionsAndDropsNoRequest(t *testing.T) {
	upstream := multiSlowUpstream(t)
	site := func(extra string) string {
		return fmt.Sprintf(`	wechat_auth {
		sandbox
%s
	}
	reverse_proxy %s`, extra, upstream)
	}
	global := "\tstorage file_system " + t.TempDir()
	m := multiNew(t, "memory", global, site("\t\tmax_sessions 1000"))
	m.Start()

	lr := loginAt(t, m.Base, map[string]string{"code": "reload-user"})
	r := postJSON(t, m.Base+"/wx/sandbox/encrypt", lr.Token, map[string]any{"stepInfoList": []map[string]int{{"timestamp": 1700000000, "step": 4321}}})
	wantStatus(t, r, http.StatusOK)
	var sealed struct{ EncryptedData, IV string }
	json.Unmarshal(r.Body, &sealed)
	r = postJSON(t, m.Base+"/wx/decrypt", lr.Token, map[string]string{"encryptedData": sealed.EncryptedData, "iv": sealed.IV})
	wantStatus(t, r, http.StatusOK)
	plain := r.Body

	const workers = 8
	var (
		stop      atomic.Bool
		ok, total atomic.Int64
		mu        sync.Mutex
		failures  []string
		transport []string
		wg        sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One keep-alive connection per worker, as a load tool has.
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1}}
			defer client.CloseIdleConnections()
			for !stop.Load() {
				req, _ := http.NewRequest(http.MethodGet, m.Base+"/api/steps", nil)
				req.Header.Set("Authorization", "Bearer "+lr.Token)
				resp, err := client.Do(req)
				total.Add(1)
				if err != nil {
					mu.Lock()
					transport = append(transport, err.Error())
					mu.Unlock()
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%d %s", resp.StatusCode, body))
					mu.Unlock()
					continue
				}
				ok.Add(1)
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	before := ok.Load()
	m.Load(t, m.Caddyfile(global, site("\t\tmax_sessions 2000\n\t\theader_openid X-User-Openid")))
	time.Sleep(1500 * time.Millisecond)
	stop.Store(true)
	wg.Wait()

	t.Logf("%d requests, %d answered 2xx (%d before the reload was applied)", total.Load(), ok.Load(), before)
	if len(failures) > 0 {
		t.Errorf("%d non-2xx answers during the reload, first: %s", len(failures), failures[0])
	}
	if len(transport) > workers {
		t.Errorf("%d transport errors (more than one per connection), first: %s", len(transport), transport[0])
	} else if len(transport) > 0 {
		t.Logf("transport errors (at most one per keep-alive connection is allowed): %q", transport)
	}
	if ok.Load() == before {
		t.Error("no request was answered after the reload")
	}

	// The new config is in effect: the identity arrives under its new name.
	r = get(t, m.Base+"/api/steps", lr.Token)
	wantStatus(t, r, http.StatusOK)
	var seen map[string]string
	json.Unmarshal(r.Body, &seen)
	if seen["X-User-Openid"] != lr.OpenID || seen["X-WX-OPENID"] != "" {
		t.Errorf("after the reload the upstream saw %v, want the openid in X-User-Openid only", seen)
	}
	// The session survived the reload and the resize.
	r = postJSON(t, m.Base+"/wx/decrypt", lr.Token, map[string]string{"encryptedData": sealed.EncryptedData, "iv": sealed.IV})
	wantStatus(t, r, http.StatusOK)
	if !jsonEqual(t, r.Body, plain) {
		t.Errorf("after the reload the session decrypts to %s, want %s", r.Body, plain)
	}
}

// A reload that changes the session store (Redis to memory here) lets the
// logins in flight finish with the store they began with: Caddy cleans up
// the old config while its requests still run, and a login whose store
// was closed under it answers 503 with the user's code spent.
func TestReloadLetsLoginsInFlightFinish(t *testing.T) {
	rs := rdsStart(t)
	fake, wechatURL := startWeChat(t, wechattest.Options{AutoCodes: true})
	fake.AddApp(testAppID, testSecret)
	up := startUpstream(t)
	m := multiNew(t, "A", "", rdsSite(rs.URL, wechatURL, up.Addr))
	m.Start()
	loginAt(t, m.Base, map[string]string{"code": "auto-before"})

	fake.SetDelay(1500 * time.Millisecond)
	answers := make(chan string, 3)
	for i := range 3 {
		go func() {
			r, err := trySend(http.MethodPost, m.Base+"/wx/login", http.Header{"Content-Type": {"application/json"}}, fmt.Sprintf(`{"code":"auto-inflight-%d"}`, i))
			if err != nil {
				answers <- err.Error()
				return
			}
			answers <- fmt.Sprintf("%d %s", r.Status, r.Body)
		}()
	}
	time.Sleep(500 * time.Millisecond)
	m.Load(t, m.Caddyfile("", usrSite(wechatURL, up.Addr, "")))
	for range 3 {
		if a := <-answers; !strings.HasPrefix(a, "200 ") {
			t.Errorf("a login in flight during the reload got %s", a)
		}
	}
	fake.SetDelay(0)
	loginAt(t, m.Base, map[string]string{"code": "auto-after"})
}
