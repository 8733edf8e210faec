package wechatauth

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-wechat/wechatauth/internal/platform"
	"github.com/caddy-wechat/wechatauth/wechattest"
)

// loginOnly is a platform with logins and nothing else: no phone API.
type loginOnly struct{}

func (loginOnly) Login(_ context.Context, _, code string) (platform.Login, error) {
	return platform.Login{OpenID: "o-login-only-" + code, SessionKey: "MDEyMzQ1Njc4OWFiY2RlZg=="}, nil
}

// The routes reach the platform through its interface: a platform without
// a phone API logs users in, and a phone code sent to it is a 400 that
// says what to send instead, not a 5xx or a call to WeChat.
func TestPhoneCodeOnAPlatformWithoutPhoneAPIIs400(t *testing.T) {
	s := newSite(t, &Handler{}, wechattest.Options{AutoCodes: true})
	s.h.platform = loginOnly{}
	a := s.login("c1")
	if a.OpenID != "o-login-only-c1" {
		t.Fatalf("login answered openid %q: the route did not use the platform", a.OpenID)
	}
	w := s.serve(http.MethodPost, "/wx/phone", "application/json", `{"code":"phonecode1"}`, bearer(a.Token))
	if w.Code != http.StatusBadRequest {
		t.Fatalf("%d %s, want 400", w.Code, w.Body)
	}
	b := decodeError(t, w)
	if b.Error != "invalid_request" || !strings.Contains(b.Message, "encryptedData") {
		t.Fatalf("answer %+v, want invalid_request naming encryptedData", b)
	}
	if s.up.called != 0 {
		t.Fatal("the phone route reached the upstream")
	}
}
