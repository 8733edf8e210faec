package wechat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
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

// An access token WeChat gives must look like one: a hostile or broken
// stable_token answer with a token of a few characters (which would be
// found, and replaced, all over every answer), a huge one, or one with
// spaces or control characters is refused as WeChat unavailable.
func TestAccessTokenMustBePlausible(t *testing.T) {
	for _, tc := range []struct {
		token string
		ok    bool
	}{
		{"ok", false},
		{"0123456789abcde", false},
		{"0123456789abcdef", true},
		{strings.Repeat("A", 2048), true},
		{strings.Repeat("A", 2049), false},
		{"86_Hq3xVd0Tn7kP2 mWbZr5Ls9YcF1gJ4uE8aQ6", false},
		{"86_Hq3xVd0Tn7kP2\u00e9mWbZr5Ls9YcF1gJ4uE8aQ6", false},
		{"86_Hq3xVd0Tn7kP2mWbZr5Ls9YcF1gJ4uE8aQ6oI0tR3yN7vB2xK5pM9wD1hS4fG8zC", true},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := json.Marshal(map[string]any{"access_token": tc.token, "expires_in": 7200})
			w.Write(body)
		}))
		c := wechat.New(wechat.Config{BaseURL: srv.URL, Apps: map[string]string{appID: secret}})
		got, err := c.AccessToken(context.Background(), appID)
		srv.Close()
		if tc.ok && (err != nil || got != tc.token) {
			t.Errorf("token of %d characters: %v, want it taken", len(tc.token), err)
		}
		var ue *wechat.UnavailableError
		if !tc.ok && !errors.As(err, &ue) {
			t.Errorf("token %.20q…: %q %v, want WeChat unavailable", tc.token, got, err)
		}
	}
}
