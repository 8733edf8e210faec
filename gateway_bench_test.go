package wechatauth

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A WeChat that answers at once: what a forwarded call costs beyond it is
// the gateway's cost plus one loopback HTTP round trip, which
// BenchmarkGatewayDirectCall measures alone.
func benchWeChat(tb testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		if r.URL.Path == "/cgi-bin/stable_token" {
			io.WriteString(w, `{"access_token":"bench-access-token","expires_in":7200}`)
			return
		}
		io.WriteString(w, `{"errcode":0,"errmsg":"ok","result":{"suggest":"pass","label":100}}`)
	}))
	tb.Cleanup(srv.Close)
	return srv
}

const benchSecCheck = `{"content":"hello world","version":2,"scene":2,"openid":"oBench000000000000000000001"}`

// BenchmarkGatewayForward is one forwarded call through ServeHTTP: allow
// check, body read, query rewrite, token lookup, the call and the answer.
func BenchmarkGatewayForward(b *testing.B) {
	srv := benchWeChat(b)
	ctx := benchContext(b)
	g := &APIGateway{
		Apps:       []App{{AppID: "wxbench000000001", AppSecret: "bench-secret"}},
		APIBase:    srv.URL,
		SigningKey: benchSigningKey,
		Allow:      []string{"/wxa/msg_sec_check"},
	}
	if err := g.Provision(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.Cleanup() })
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := httptest.NewRequest(http.MethodPost, "/wxa/msg_sec_check", strings.NewReader(benchSecCheck))
		r.Header.Set("Content-Type", "application/json")
		w := newDiscardWriter()
		g.ServeHTTP(w, r, nil)
		if w.status != http.StatusOK {
			b.Fatalf("status %d: %s", w.status, w.body)
		}
	}
}

// BenchmarkGatewayDirectCall is the same call made straight to WeChat with
// a token, as an upstream holding its own token would.
func BenchmarkGatewayDirectCall(b *testing.B) {
	srv := benchWeChat(b)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := hc.Post(srv.URL+"/wxa/msg_sec_check?access_token=bench-access-token", "application/json", bytes.NewReader([]byte(benchSecCheck)))
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(body) == 0 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
