package wechat_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/wechat"
	"github.com/caddy-wechat/wechatauth/wechattest"
)

func TestPhoneNumberReturnsTheNumber(t *testing.T) {
	e := newEnv(t, wechattest.Options{}, wechat.Config{})
	e.fake.AddPhoneCode("pc-1", wechattest.Phone{PhoneNumber: "+86 13800138000", PurePhoneNumber: "13800138000", CountryCode: "86"})
	info, err := e.client.PhoneNumber(context.Background(), appID, "pc-1", "oUser")
	if err != nil {
		t.Fatal(err)
	}
	want := wechat.PhoneInfo{PhoneNumber: "+86 13800138000", PurePhoneNumber: "13800138000", CountryCode: "86"}
	if *info != want {
		t.Fatalf("phone %+v, want %+v", *info, want)
	}
	// The code is single-use at WeChat, and the client does not hide that.
	_, err = e.client.PhoneNumber(context.Background(), appID, "pc-1", "oUser")
	if wechat.ErrcodeOf(err) != wechattest.ErrCodeUsed {
		t.Fatalf("second use of a phone code: %v, want errcode 40163", err)
	}
}

func TestAccessTokenIsStableAndCached(t *testing.T) {
	e := newEnv(t, wechattest.Options{AutoCodes: true}, wechat.Config{})
	ctx := context.Background()
	for _, code := range []string{"phone-13800138000", "phone-13900139000"} {
		if _, err := e.client.PhoneNumber(ctx, appID, code, ""); err != nil {
			t.Fatalf("%s: %v", code, err)
		}
	}
	if n := e.fake.Calls(wechattest.PathStableToken); n != 1 {
		t.Errorf("2 phone calls made %d stable_token calls, want 1 (cached)", n)
	}
	if n := e.fake.Calls(wechattest.PathToken); n != 0 {
		t.Errorf("the classic /cgi-bin/token was called %d times; it invalidates other instances' tokens", n)
	}
	if n := e.fake.ForcedRefreshes(); n != 0 {
		t.Errorf("%d forced refreshes; never force", n)
	}
}

func TestAccessTokenRefetchedOnceWhenWeChatRefusesIt(t *testing.T) {
	tests := []struct {
		name    string
		refuse  func(f *wechattest.Server)
		errcode int
	}{
		{"40001 invalid token", func(f *wechattest.Server) { f.InvalidateAccessToken(appID) }, 40001},
		{"42001 expired token", func(f *wechattest.Server) { f.ExpireAccessToken(appID) }, 42001},
		{"40014 invalid token", func(f *wechattest.Server) { f.FailNext(wechattest.PathPhoneNumber, 40014) }, 40014},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, wechattest.Options{AutoCodes: true}, wechat.Config{})
			ctx := context.Background()
			if _, err := e.client.PhoneNumber(ctx, appID, "phone-1", ""); err != nil {
				t.Fatal(err)
			}
			tt.refuse(e.fake)
			info, err := e.client.PhoneNumber(ctx, appID, "phone-2", "")
			if err != nil {
				t.Fatalf("after %d the call failed: %v", tt.errcode, err)
			}
			if info.PhoneNumber != "2" {
				t.Fatalf("phone %+v", info)
			}
			if n := e.fake.Calls(wechattest.PathStableToken); n != 2 {
				t.Errorf("stable_token calls %d, want 2 (first fetch, refetch after %d)", n, tt.errcode)
			}
			if n := e.fake.Calls(wechattest.PathPhoneNumber); n != 3 {
				t.Errorf("phone calls %d, want 3 (ok, refused, retried)", n)
			}
			if n := e.fake.ForcedRefreshes(); n != 0 {
				t.Errorf("%d forced refreshes; the refetch must not force", n)
			}
			if n := e.fake.Calls(wechattest.PathToken); n != 0 {
				t.Errorf("classic token called %d times", n)
			}
		})
	}
}

func TestAccessTokenRetryIsOnlyOnce(t *testing.T) {
	e := newEnv(t, wechattest.Options{AutoCodes: true}, wechat.Config{})
	e.fake.FailNext(wechattest.PathPhoneNumber, 40001)
	e.fake.FailNext(wechattest.PathPhoneNumber, 40001)
	e.fake.FailNext(wechattest.PathPhoneNumber, 40001)
	_, err := e.client.PhoneNumber(context.Background(), appID, "phone-1", "")
	if wechat.ErrcodeOf(err) != 40001 {
		t.Fatalf("err = %v, want errcode 40001 after one retry", err)
	}
	if n := e.fake.Calls(wechattest.PathPhoneNumber); n != 2 {
		t.Fatalf("phone calls %d, want 2", n)
	}
	if n := e.fake.Calls(wechattest.PathStableToken); n != 2 {
		t.Fatalf("stable_token calls %d, want 2", n)
	}
}

func TestPhoneCodeNotResentAfterTransportError(t *testing.T) {
	e := newEnv(t, wechattest.Options{AutoCodes: true}, wechat.Config{})
	e.fake.FailNextHTTP(wechattest.PathPhoneNumber, http.StatusBadGateway, "<html>502</html>")
	_, err := e.client.PhoneNumber(context.Background(), appID, "phone-1", "")
	var ue *wechat.UnavailableError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v, want *wechat.UnavailableError", err)
	}
	if n := e.fake.Calls(wechattest.PathPhoneNumber); n != 1 {
		t.Fatalf("the phone code was sent %d times", n)
	}
}

func TestStableTokenRetriedOnceAfterTransportError(t *testing.T) {
	e := newEnv(t, wechattest.Options{AutoCodes: true}, wechat.Config{})
	e.fake.FailNextHTTP(wechattest.PathStableToken, http.StatusBadGateway, "<html>502</html>")
	if _, err := e.client.PhoneNumber(context.Background(), appID, "phone-1", ""); err != nil {
		t.Fatalf("a fetch of the stable token, which is idempotent, was not retried: %v", err)
	}
	if n := e.fake.Calls(wechattest.PathStableToken); n != 2 {
		t.Fatalf("stable_token calls %d, want 2", n)
	}
}

func TestAccessTokenDroppedFiveMinutesBeforeExpiry(t *testing.T) {
	clk := newClock()
	e := newEnv(t, wechattest.Options{Now: clk.Now}, wechat.Config{Now: clk.Now})
	ctx := context.Background()
	first, err := e.client.AccessToken(ctx, appID)
	if err != nil {
		t.Fatal(err)
	}
	// WeChat says 7200 s; the cache keeps it until 5 minutes before.
	clk.Advance(wechattest.TokenTTL - 5*time.Minute - time.Second)
	if tok, _ := e.client.AccessToken(ctx, appID); tok != first {
		t.Fatal("the token was dropped more than 5 minutes before its expiry")
	}
	if n := e.fake.Calls(wechattest.PathStableToken); n != 1 {
		t.Fatalf("stable_token calls %d, want 1", n)
	}
	clk.Advance(2 * time.Second)
	if _, err := e.client.AccessToken(ctx, appID); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.Calls(wechattest.PathStableToken); n != 2 {
		t.Fatalf("stable_token calls %d, want 2: a token within 5 minutes of expiry is refetched", n)
	}
	// WeChat now says only 299 s are left, which is inside the margin:
	// the next call asks again rather than use a token about to die.
	if _, err := e.client.AccessToken(ctx, appID); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.Calls(wechattest.PathStableToken); n != 3 {
		t.Fatalf("stable_token calls %d, want 3", n)
	}
	if n := e.fake.ForcedRefreshes(); n != 0 {
		t.Fatalf("%d forced refreshes", n)
	}
}

func TestAccessTokenUnknownApp(t *testing.T) {
	e := newEnv(t, wechattest.Options{}, wechat.Config{})
	if _, err := e.client.AccessToken(context.Background(), "wxnope"); !errors.Is(err, wechat.ErrUnknownApp) {
		t.Fatalf("err = %v, want ErrUnknownApp", err)
	}
}

func TestPhoneNumberAnswerWithoutPhoneIsUnavailable(t *testing.T) {
	srv := serveJSONPaths(t, map[string]string{
		"/cgi-bin/stable_token":            `{"access_token":"T0123456789abcdef","expires_in":7200}`,
		"/wxa/business/getuserphonenumber": `{"errcode":0,"errmsg":"ok"}`,
	})
	_, err := srv.PhoneNumber(context.Background(), appID, "c", "")
	var ue *wechat.UnavailableError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v, want *wechat.UnavailableError", err)
	}
}

// TestPhoneNumberOfAnotherAppIsForeign: a number whose watermark names
// another app is refused as not this app's data, not as WeChat being
// unavailable (which a client would retry).
func TestPhoneNumberOfAnotherAppIsForeign(t *testing.T) {
	c := serveJSONPaths(t, map[string]string{
		"/cgi-bin/stable_token":            `{"access_token":"T0123456789abcdef","expires_in":7200}`,
		"/wxa/business/getuserphonenumber": `{"errcode":0,"errmsg":"ok","phone_info":{"phoneNumber":"13800138000","purePhoneNumber":"13800138000","countryCode":"86","watermark":{"timestamp":1,"appid":"wxOTHER"}}}`,
	})
	_, err := c.PhoneNumber(context.Background(), appID, "c", "")
	var ue *wechat.UnavailableError
	if !errors.Is(err, wechat.ErrForeignWatermark) || errors.As(err, &ue) {
		t.Fatalf("err = %v, want wechat.ErrForeignWatermark", err)
	}
}

func TestPhoneNumberAcceptsCountryCodeAsNumberOrString(t *testing.T) {
	for _, cc := range []string{`86`, `"86"`} {
		t.Run(cc, func(t *testing.T) {
			c := serveJSONPaths(t, map[string]string{
				"/cgi-bin/stable_token":            `{"access_token":"T0123456789abcdef","expires_in":7200}`,
				"/wxa/business/getuserphonenumber": `{"errcode":0,"errmsg":"ok","phone_info":{"phoneNumber":"13800138000","purePhoneNumber":"13800138000","countryCode":` + cc + `,"watermark":{"timestamp":1,"appid":"` + appID + `"}}}`,
			})
			info, err := c.PhoneNumber(context.Background(), appID, "c", "")
			if err != nil {
				t.Fatal(err)
			}
			if info.CountryCode != "86" {
				t.Fatalf("countryCode %q, want \"86\"", info.CountryCode)
			}
		})
	}
}

func TestPhoneInfoUnmarshalsCountryCode(t *testing.T) {
	tests := []struct {
		json    string
		want    string
		wantErr bool
	}{
		{`{"phoneNumber":"1","countryCode":86}`, "86", false},
		{`{"phoneNumber":"1","countryCode":"86"}`, "86", false},
		{`{"phoneNumber":"1","countryCode":"+86"}`, "86", false},
		{`{"phoneNumber":"1","countryCode":1}`, "1", false},
		{`{"phoneNumber":"1"}`, "", false},
		{`{"phoneNumber":"1","countryCode":null}`, "", false},
		{`{"phoneNumber":"1","countryCode":true}`, "", true},
		{`{"phoneNumber":"1","countryCode":[86]}`, "", true},
		{`{"phoneNumber":"1","countryCode":{}}`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.json, func(t *testing.T) {
			var p wechat.PhoneInfo
			err := json.Unmarshal([]byte(tt.json), &p)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && (p.CountryCode != tt.want || p.PhoneNumber != "1") {
				t.Fatalf("got %+v, want countryCode %q", p, tt.want)
			}
		})
	}
	// Marshalled again it is always a string, as the old button sends it.
	b, _ := json.Marshal(wechat.PhoneInfo{PhoneNumber: "1", PurePhoneNumber: "1", CountryCode: "86"})
	if string(b) != `{"phoneNumber":"1","purePhoneNumber":"1","countryCode":"86"}` {
		t.Fatalf("marshalled %s", b)
	}
}

// serveJSONPaths returns a client whose WeChat answers each path with a
// fixed JSON body.
func serveJSONPaths(t *testing.T, bodies map[string]string) *wechat.Client {
	t.Helper()
	mux := http.NewServeMux()
	for path, body := range bodies {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(body))
		})
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return wechat.New(wechat.Config{BaseURL: srv.URL, Apps: map[string]string{appID: secret}, HTTPClient: srv.Client()})
}
