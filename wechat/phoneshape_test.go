package wechat_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddy-wechat/wechatauth/wechat"
)

// A getuserphonenumber answer whose numbers hold line breaks, NUL or a
// flood of digits is refused as WeChat being unavailable: the numbers
// reach the app as they are. (One whose watermark names another app:
// TestPhoneNumberOfAnotherAppIsForeign.)
func TestPhoneNumberRefusesMalformedPhoneInfo(t *testing.T) {
	for name, info := range map[string]string{
		"crlf":    `{"phoneNumber":"138\r\nX: y","purePhoneNumber":"138","countryCode":"86"}`,
		"nul":     `{"phoneNumber":"138\u0000","purePhoneNumber":"138","countryCode":"86"}`,
		"flood":   `{"phoneNumber":"` + strings.Repeat("1", 100000) + `","purePhoneNumber":"1","countryCode":"86"}`,
		"country": `{"phoneNumber":"13800138000","purePhoneNumber":"13800138000","countryCode":"8\n6"}`,
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "stable_token") {
				w.Write([]byte(`{"access_token":"token-for-a-test","expires_in":7200}`))
				return
			}
			w.Write([]byte(`{"errcode":0,"phone_info":` + info + `}`))
		}))
		c := wechat.New(wechat.Config{BaseURL: srv.URL, Apps: map[string]string{appID: secret}})
		got, err := c.PhoneNumber(context.Background(), appID, "phone-code", "")
		srv.Close()
		var ue *wechat.UnavailableError
		if !errors.As(err, &ue) {
			t.Errorf("%s: got %+v, err %v; want an UnavailableError", name, got, err)
		}
	}
}
