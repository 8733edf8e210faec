package caddytest

// Acceptance points covered here (issue 5):
//   - /metrics on the admin endpoint shows caddy_wechat_auth_logins_total
//     counting logins (by result), plus
//     caddy_wechat_auth_token_verifications_total,
//     caddy_wechat_auth_wechat_request_duration_seconds,
//     caddy_wechat_auth_decryptions_total,
//     caddy_wechat_auth_wechat_requests_total and
//     caddy_wechat_auth_session_store_total, each moving with what was done.
//   - After a reload (a changed config loaded), the login count keeps
//     rising from where it was.
//   - No metric carries a per-user label (no openid in /metrics).

import (
	"net/http"
	"strings"
	"testing"
)

// metricDelta returns how much a metric moved between two scrapes.
func metricDelta(before, after, name string, labels ...string) float64 {
	return metricTotal(after, name, labels...) - metricTotal(before, name, labels...)
}

func TestMetricsCountWhatHappens(t *testing.T) {
	st := startStack(t, stackConfig{})
	user := st.addUser("metrics-ok")
	st.addUser("metrics-used")
	st.login(t, "metrics-used")
	before := scrapeMetrics(t)

	lr := st.login(t, "metrics-ok")
	postJSON(t, st.Base+"/wx/login", "", map[string]string{"code": "metrics-used"}) // 40163: invalid_code
	// Refused before the login reads anything, counted as the audit log
	// records them: another method, a body declared over 64 KiB.
	get(t, st.Base+"/wx/login", "")
	send(t, http.MethodPost, st.Base+"/wx/login", http.Header{"Content-Type": {"application/json"}}, strings.Repeat(" ", 65<<10)+"{}")
	get(t, st.Base+"/api", lr.Token)      // verification ok
	get(t, st.Base+"/api", "")            // missing
	get(t, st.Base+"/api", "not.a.token") // invalid
	enc, iv := encryptFor(t, user.SessionKey, map[string]any{"stepInfoList": []any{}})
	postJSON(t, st.Base+"/wx/decrypt", lr.Token, map[string]string{"encryptedData": enc, "iv": iv})                         // ok
	postJSON(t, st.Base+"/wx/decrypt", lr.Token, map[string]string{"encryptedData": vector.EncryptedData, "iv": vector.IV}) // decrypt_failed
	after := scrapeMetrics(t)

	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"caddy_wechat_auth_logins_total", []string{`result="ok"`}, 1},
		{"caddy_wechat_auth_logins_total", []string{`result="invalid_code"`}, 1},
		{"caddy_wechat_auth_logins_total", []string{`result="invalid_request"`}, 1},
		{"caddy_wechat_auth_logins_total", []string{`result="payload_too_large"`}, 1},
		{"caddy_wechat_auth_token_verifications_total", []string{`result="ok"`}, 3}, // /api and two decrypts
		{"caddy_wechat_auth_token_verifications_total", []string{`result="missing"`}, 1},
		{"caddy_wechat_auth_token_verifications_total", []string{`result="invalid"`}, 1},
		{"caddy_wechat_auth_decryptions_total", []string{`result="ok"`}, 1},
		{"caddy_wechat_auth_decryptions_total", []string{`result="decrypt_failed"`}, 1},
		{"caddy_wechat_auth_wechat_requests_total", []string{`api="jscode2session"`, `result="ok"`}, 1},
		{"caddy_wechat_auth_wechat_requests_total", []string{`api="jscode2session"`, `result="40163"`}, 1},
		{"caddy_wechat_auth_wechat_request_duration_seconds_count", []string{`api="jscode2session"`}, 2},
		{"caddy_wechat_auth_session_store_total", []string{`op="set"`, `result="ok"`}, 1},
	}
	for _, tt := range tests {
		if got := metricDelta(before, after, tt.name, tt.labels...); got != tt.want {
			t.Errorf("%s{%s} rose by %v, want %v", tt.name, strings.Join(tt.labels, ","), got, tt.want)
		}
	}
	for _, name := range []string{
		"# TYPE caddy_wechat_auth_logins_total counter",
		"# TYPE caddy_wechat_auth_token_verifications_total counter",
		"# TYPE caddy_wechat_auth_wechat_request_duration_seconds histogram",
	} {
		if !strings.Contains(after, name) {
			t.Errorf("/metrics lacks %q", name)
		}
	}
	if strings.Contains(after, user.OpenID) || strings.Contains(after, lr.OpenID) {
		t.Errorf("/metrics carries an openid: per-user labels")
	}
}

func TestMetricsKeepCountingAcrossReload(t *testing.T) {
	st := startStack(t, stackConfig{})
	st.addUser("before-reload")
	st.login(t, "before-reload")
	before := metricTotal(scrapeMetrics(t), "caddy_wechat_auth_logins_total", `result="ok"`)
	if before < 1 {
		t.Fatalf("logins_total{result=\"ok\"} is %v after a login", before)
	}

	// A changed config: Caddy provisions a new handler and a new metrics
	// registry.
	reloaded := strings.Replace(st.Caddyfile, "timeout 2s", "timeout 3s\n\t\ttoken_ttl 1h", 1)
	if reloaded == st.Caddyfile {
		t.Fatal("the config did not change")
	}
	loadCaddy(t, reloaded)
	if got := metricTotal(scrapeMetrics(t), "caddy_wechat_auth_logins_total", `result="ok"`); got != before {
		t.Errorf("logins_total{result=\"ok\"} went from %v to %v across the reload, want it kept", before, got)
	}
	st.addUser("after-reload")
	lr := st.login(t, "after-reload")
	if lr.ExpiresIn > 3600 {
		t.Fatalf("the reloaded config (token_ttl 1h) is not running: expires_in %d", lr.ExpiresIn)
	}
	if got := metricTotal(scrapeMetrics(t), "caddy_wechat_auth_logins_total", `result="ok"`); got != before+1 {
		t.Errorf("logins_total{result=\"ok\"} is %v after one more login, want %v", got, before+1)
	}
	wantStatus(t, get(t, st.Base+"/api", lr.Token), http.StatusOK)

	// A reload wechat_auth's own check refuses (it can never run there):
	// Caddy keeps serving the config before, and /metrics still counts.
	refusedLoad(t, "text/caddyfile", reloaded+"\nhttp://localhost:9081 {\n\troute {\n\t\trespond \"x\"\n\t\twechat_auth {\n\t\t\tsandbox\n\t\t}\n\t}\n}\n")
	st.addUser("after-refused-reload")
	st.login(t, "after-refused-reload")
	if got := metricTotal(scrapeMetrics(t), "caddy_wechat_auth_logins_total", `result="ok"`); got != before+2 {
		t.Errorf("logins_total{result=\"ok\"} is %v after a refused reload and one more login, want %v", got, before+2)
	}
}

// The opening of a handoff link refused before it is read (another
// method, a body declared over 64 KiB) is counted in web_logins_total, as
// the audit log records it; a request for a link, no login, is not.
func TestMetricsCountRefusedHandoffs(t *testing.T) {
	st := webStack(t, "", "")
	st.addUser("metrics-handoff")
	lr := st.login(t, "metrics-handoff")
	big := strings.Repeat(" ", 65<<10) + "{}"
	json := http.Header{"Content-Type": {"application/json"}}
	before := scrapeMetrics(t)
	send(t, http.MethodPut, siteBase+"/wx/web/handoff?ticket=x", nil, "")
	send(t, http.MethodPost, siteBase+"/wx/web/handoff?ticket=x", json, big)
	// Requests for a link: refused, and not counted.
	send(t, http.MethodPost, siteBase+"/wx/web/handoff", json, big)
	send(t, http.MethodPost, siteBase+"/wx/web/handoff", http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + lr.Token}}, big)
	after := scrapeMetrics(t)
	for _, result := range []string{"invalid_request", "payload_too_large"} {
		if got := metricDelta(before, after, "caddy_wechat_auth_web_logins_total", `flow="handoff"`, `result="`+result+`"`); got != 1 {
			t.Errorf("web_logins_total{flow=\"handoff\",result=%q} rose by %v, want 1", result, got)
		}
	}
}
