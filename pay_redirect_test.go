package wechatauth

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// An answer of WeChat Pay's API base that redirects elsewhere is not
// followed: the order (amounts, the payer's openid) must not be sent on
// to a host the operator never configured, and the caller gets the
// gateway's own error.
func TestPayRedirectIsNotFollowed(t *testing.T) {
	var stolen atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		stolen.Add(1)
	}))
	t.Cleanup(other.Close)
	p := newPayBench(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		http.Redirect(w, r, other.URL+"/collect", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(up.Close)
	p.g.merchant.base = up.URL
	p.g.merchant.client = newPayClient(http.DefaultTransport)
	p.g.Timeout = caddy.Duration(5 * time.Second)
	r := httptest.NewRequest(http.MethodPost, "/v3/refund/domestic/refunds", bytes.NewReader([]byte(benchRefund)))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	p.g.ServeHTTP(w, r, nil)
	if stolen.Load() != 0 {
		t.Fatalf("the order was sent on to the redirect's host %d time(s)", stolen.Load())
	}
	if w.Code != http.StatusServiceUnavailable || !bytes.Contains(w.Body.Bytes(), []byte(`"wechat_unavailable"`)) {
		t.Fatalf("status %d %s, want the gateway's JSON error", w.Code, w.Body)
	}
}
