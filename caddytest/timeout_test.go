package caddytest

// Acceptance points covered here (issue 5):
//   - With WeChat taking 15 s to answer, a login answers 503
//     wechat_unavailable (with Retry-After) within 7 s — both with the
//     default timeout (5 s) and with `timeout 2s` — and a proxied request
//     made meanwhile answers in under 200 ms.
//   - A phone call while WeChat hangs also ends in 503, within the timeout
//     (issue 5: timeouts everywhere a peer can stall).

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

func TestHangingWeChatMakesLoginFailFastAndProxyingStaysFast(t *testing.T) {
	fake, fakeURL := startWeChat(t, optsSingleUse)
	fake.AddApp(testAppID, testSecret)
	up := startUpstream(t)
	base := "\t\tapp_id " + testAppID + "\n\t\tapp_secret " + testSecret + "\n\t\tapi_base " + fakeURL + "\n\t\tsigning_key " + testSigningKey + "\n"
	loadCaddy(t, globalOptions("")+
		wechatSite(siteBase, base+"\t\ttimeout 2s\n", up.Addr, "")+
		wechatSite(siteBase2, base, up.Addr, "")) // default timeout: 5 s
	fake.AddCode(testAppID, "before", wechattestUser())
	token := loginAt(t, siteBase, map[string]string{"code": "before"}).Token

	fake.SetDelay(15 * time.Second)
	defer fake.SetDelay(0)
	sites := []struct{ name, base, code string }{
		{"timeout 2s", siteBase, "slow-1"},
		{"default timeout", siteBase2, "slow-2"},
	}
	var wg sync.WaitGroup
	results := make([]*reply, len(sites))
	took := make([]time.Duration, len(sites))
	for i, s := range sites {
		fake.AddCode(testAppID, s.code, wechattestUser())
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			r, err := trySend(http.MethodPost, s.base+"/wx/login", http.Header{"Content-Type": {"application/json"}}, `{"code":"`+s.code+`"}`)
			took[i] = time.Since(start)
			if err == nil {
				results[i] = r
			}
		}()
	}

	// Proxied requests while both logins hang on WeChat.
	time.Sleep(200 * time.Millisecond)
	took5 := getTimes(t, 5, func(int) string { return siteBase + "/api/during" }, token)
	wantFast(t, "proxied requests while WeChat hung", took5, 200*time.Millisecond)
	t.Logf("5 proxied requests during the hang took %v", took5)

	wg.Wait()
	for i, s := range sites {
		t.Run(s.name, func(t *testing.T) {
			t.Logf("login answered after %v", took[i])
			if results[i] == nil {
				t.Fatalf("login got no answer (after %v)", took[i])
			}
			wantError(t, results[i], http.StatusServiceUnavailable, "wechat_unavailable")
			if results[i].Header.Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After")
			}
			if took[i] >= 7*time.Second {
				t.Errorf("login answered after %v, want within 7s", took[i])
			}
		})
	}
	if calls := fake.Calls(wechattest.PathCode2Session); calls != 3 {
		t.Errorf("%d jscode2session calls, want 3 (one per login, no retry of a code)", calls)
	}
}

func TestHangingWeChatMakesPhoneFailWithinTimeout(t *testing.T) {
	st := startStack(t, stackConfig{})
	st.addUser("phone-hang")
	lr := st.login(t, "phone-hang")
	st.WeChat.AddPhoneCode("pc", testPhone)
	st.WeChat.SetDelay(15 * time.Second)
	defer st.WeChat.SetDelay(0)

	start := time.Now()
	r := postJSON(t, st.Base+"/wx/phone", lr.Token, map[string]string{"code": "pc"})
	took := time.Since(start)
	t.Logf("phone answered after %v with timeout %v", took, testTimeout)
	wantError(t, r, http.StatusServiceUnavailable, "wechat_unavailable")
	if took >= testTimeout+time.Second {
		t.Errorf("phone answered after %v with timeout %v; a hanging WeChat must not hold it longer than the timeout", took, testTimeout)
	}
}
