package wechatauth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/certmagic"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

// failingStorage is Caddy's storage refusing every write.
type failingStorage struct{ certmagic.Storage }

func (failingStorage) Store(context.Context, string, []byte) error {
	return errors.New("disk full")
}

// TestPlainPushNotTakenIsNotAReplay: a plain-mode push answered 503
// (neither delivered nor queued) leaves no trace in the replay check, so
// WeChat's retry with the same timestamp and nonce is taken, not refused.
func TestPlainPushNotTakenIsNotAReplay(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // connections refused
	ctx := benchContext(t)
	p := &Push{AppID: benchPushApp, Token: benchPushToken, DeliveryConfig: DeliveryConfig{To: down.URL + "/push"}}
	if err := p.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Cleanup()
	p.delivery.storage = failingStorage{ctx.Storage()}

	push := wechattest.Push{Token: benchPushToken, AppID: benchPushApp, Nonce: "12345"}
	msg := push.Text("oUSER0000000000000000000000q", "retry me")
	serve := func() int {
		req, err := push.Request("http://caddy/wechat/push", msg)
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		p.ServeHTTP(w, req, nil)
		return w.Code
	}
	if code := serve(); code != http.StatusServiceUnavailable {
		t.Fatalf("first push: %d, want 503 (the outbox cannot write)", code)
	}
	if code := serve(); code != http.StatusServiceUnavailable {
		t.Fatalf("WeChat's retry: %d, want 503 again, not refused as a replay", code)
	}
}
