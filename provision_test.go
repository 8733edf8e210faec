package wechatauth

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

func TestSigningKeyListAndKeyRotationConfig(t *testing.T) {
	m, err := parseBlock(t, "wechat_auth {\n sandbox\n signing_key "+ringKeyNew+" "+ringKeyOld+" {env.OLDER}\n}")
	if err != nil {
		t.Fatal(err)
	}
	prev, _ := json.Marshal(m["previous_signing_keys"])
	if m["signing_key"] != ringKeyNew || string(prev) != `["`+ringKeyOld+`","{env.OLDER}"]` {
		t.Errorf("signing_key NEW OLD {env.OLDER} gives %v and %s", m["signing_key"], prev)
	}
	m, err = parseBlock(t, "wechat_auth {\n sandbox\n key_rotation 720h\n}")
	if err != nil || m["key_rotation"] != float64(720*time.Hour) {
		t.Errorf("key_rotation 720h gives %v (%v)", m["key_rotation"], err)
	}

	for name, tc := range map[string]struct {
		h    Handler
		want string
	}{
		"rotation with a configured key": {Handler{SigningKey: ringKeyNew, KeyRotation: caddy.Duration(time.Hour)}, "key_rotation rotates generated keys only"},
		"short previous key":             {Handler{SigningKey: ringKeyNew, PreviousSigningKeys: []string{"short"}}, "previous signing key 1 is 5 bytes"},
		"previous without current":       {Handler{PreviousSigningKeys: []string{ringKeyOld}}, "without signing_key"},
		"negative rotation":              {Handler{KeyRotation: caddy.Duration(-time.Hour)}, "key_rotation must be a positive duration"},
		"rotation every nanosecond":      {Handler{KeyRotation: caddy.Duration(time.Nanosecond)}, "at most every second"},
		"101 rotations per token_ttl":    {Handler{KeyRotation: caddy.Duration(time.Minute), TokenTTL: caddy.Duration(101 * time.Minute)}, "at most 100 times per token_ttl"},
		"a rotation every 30000h, taken": {Handler{KeyRotation: caddy.Duration(30000 * time.Hour)}, ""},
	} {
		h := tc.h
		h.Sandbox = true
		h.setDefaults()
		err := h.resolveSecrets()
		if err == nil {
			err = h.checkConfig()
		}
		if tc.want == "" && err != nil {
			t.Errorf("%s: %v, want it taken", name, err)
		}
		if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
		if err != nil && (strings.Contains(err.Error(), ringKeyNew) || strings.Contains(err.Error(), ringKeyOld)) {
			t.Errorf("%s: the error shows a key", name)
		}
	}
}

// Through ServeHTTP: a cached token stops working as soon as its session
// is logged out, because revocation is checked on every request.
func TestCachedTokenRefusedAfterLogout(t *testing.T) {
	h := newBenchHandler(t, nil)
	tok := benchLogin(t, h, "logout-user")
	serve := func(path string) int {
		r := miniProgramRequest(tok)
		if path != "" {
			r.Method = http.MethodPost
			r.URL.Path = path
		}
		w := newDiscardWriter()
		if err := h.ServeHTTP(w, r, okHandler{}); err != nil {
			t.Fatal(err)
		}
		return w.status
	}
	for range 3 {
		if got := serve(""); got != http.StatusOK {
			t.Fatalf("request with a fresh token: status %d", got)
		}
	}
	if got := serve(h.RoutePrefix + "/logout"); got != http.StatusNoContent {
		t.Fatalf("logout: status %d", got)
	}
	if got := serve(""); got != http.StatusUnauthorized {
		t.Fatalf("request with a logged-out token: status %d, want 401", got)
	}
}

// An identity header may not be one the request needs for itself
// (Authorization is removed before the upstream; Host, Cookie and the
// body's headers are the request's), nor share its name with another
// identity header or X-WX-SOURCE: the upstream would read one identity
// for another.
func TestIdentityHeaderNamesAreTheirOwn(t *testing.T) {
	for _, tc := range []struct {
		h    Handler
		want string
	}{
		{Handler{HeaderOpenID: "Authorization"}, "cannot carry an identity"},
		{Handler{HeaderAppID: "host"}, "cannot carry an identity"},
		{Handler{HeaderUnionID: "Cookie"}, "cannot carry an identity"},
		{Handler{HeaderOpenID: "X-User", HeaderUnionID: "x-user"}, "named for two identity headers"},
		{Handler{HeaderAppID: "X-WX-SOURCE"}, "named for two identity headers"},
	} {
		h := tc.h
		h.Sandbox, h.SigningKey = true, benchSigningKey
		if err := provision(t, &h); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error saying %q", [3]string{tc.h.HeaderOpenID, tc.h.HeaderUnionID, tc.h.HeaderAppID}, err, tc.want)
		}
	}
	ok := Handler{Sandbox: true, SigningKey: benchSigningKey, HeaderOpenID: "X-User-Id", HeaderAppID: "X-App-Id"}
	if err := provision(t, &ok); err != nil {
		t.Fatalf("names of their own: %v", err)
	}
}
