package wechat_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/wechat"
)

// A stable_token answer with an absurd expires_in (here one that
// overflows a time.Duration into about a century) must not pin the token
// beyond the two hours WeChat gives one.
func TestAccessTokenHugeExpiresInIsCappedAtTwoHours(t *testing.T) {
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := fetches.Add(1)
		fmt.Fprintf(w, `{"access_token":"token-for-test-%d","expires_in":1000000000000}`, n)
	}))
	t.Cleanup(srv.Close)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := wechat.New(wechat.Config{BaseURL: srv.URL, Apps: map[string]string{appID: secret}, Now: func() time.Time { return now }})
	if _, err := c.AccessToken(context.Background(), appID); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Hour)
	tok, err := c.AccessToken(context.Background(), appID)
	if err != nil || tok != "token-for-test-2" || fetches.Load() != 2 {
		t.Fatalf("after 2h: token %q, err %v, %d fetches; want a fresh token", tok, err, fetches.Load())
	}
}
