package wechattest_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

const (
	appID  = "wxfaketest000001"
	secret = "fake-secret"
)

// clock is a settable time for the client and the fake alike.
type clock = wechattest.Clock

func newClock() *clock { return wechattest.NewClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)) }

// answer is the union of the fake's JSON answers.
type answer struct {
	ErrCode     int    `json:"errcode"`
	ErrMsg      string `json:"errmsg"`
	OpenID      string `json:"openid"`
	SessionKey  string `json:"session_key"`
	UnionID     string `json:"unionid"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
	PhoneInfo   *struct {
		PhoneNumber     string `json:"phoneNumber"`
		PurePhoneNumber string `json:"purePhoneNumber"`
		CountryCode     any    `json:"countryCode"`
		Watermark       struct {
			AppID     string `json:"appid"`
			Timestamp int64  `json:"timestamp"`
		} `json:"watermark"`
	} `json:"phone_info"`
}

// fake is a fake WeChat served over a socket, as tests use it.
type fake struct {
	t   *testing.T
	s   *wechattest.Server
	url string
}

func newFake(t *testing.T, opts wechattest.Options) *fake {
	t.Helper()
	s := wechattest.NewServer(opts)
	s.AddApp(appID, secret)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &fake{t: t, s: s, url: srv.URL}
}

func (f *fake) do(req *http.Request) answer {
	f.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		f.t.Fatalf("%s: HTTP %d", req.URL.Path, resp.StatusCode)
	}
	var a answer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		f.t.Fatalf("%s: answer is not JSON: %v", req.URL.Path, err)
	}
	if a.ErrCode != 0 && !strings.Contains(a.ErrMsg, "rid: ") {
		f.t.Errorf("errmsg %q does not end with a rid as WeChat's do", a.ErrMsg)
	}
	return a
}

func (f *fake) login(appid, sec, code string) answer {
	f.t.Helper()
	q := url.Values{"appid": {appid}, "secret": {sec}, "js_code": {code}, "grant_type": {"authorization_code"}}
	req, _ := http.NewRequest(http.MethodGet, f.url+wechattest.PathCode2Session+"?"+q.Encode(), nil)
	return f.do(req)
}

func (f *fake) stableToken(appid, sec string, force bool) answer {
	f.t.Helper()
	body, _ := json.Marshal(map[string]any{"grant_type": "client_credential", "appid": appid, "secret": sec, "force_refresh": force})
	req, _ := http.NewRequest(http.MethodPost, f.url+wechattest.PathStableToken, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return f.do(req)
}

func (f *fake) classicToken() answer {
	f.t.Helper()
	q := url.Values{"grant_type": {"client_credential"}, "appid": {appID}, "secret": {secret}}
	req, _ := http.NewRequest(http.MethodGet, f.url+wechattest.PathToken+"?"+q.Encode(), nil)
	return f.do(req)
}

func (f *fake) phone(token, code string) answer {
	f.t.Helper()
	body, _ := json.Marshal(map[string]string{"code": code})
	req, _ := http.NewRequest(http.MethodPost, f.url+wechattest.PathPhoneNumber+"?access_token="+url.QueryEscape(token), bytes.NewReader(body))
	return f.do(req)
}

func TestLoginCodeIsSingleUse(t *testing.T) {
	f := newFake(t, wechattest.Options{})
	u := f.s.AddCode(appID, "c1", wechattest.User{OpenID: "oOnce", UnionID: "uOnce"})
	a := f.login(appID, secret, "c1")
	if a.ErrCode != 0 || a.OpenID != "oOnce" || a.UnionID != "uOnce" || a.SessionKey != u.SessionKey {
		t.Fatalf("first use: %+v", a)
	}
	if a := f.login(appID, secret, "c1"); a.ErrCode != wechattest.ErrCodeUsed || a.OpenID != "" {
		t.Fatalf("second use: %+v, want errcode 40163", a)
	}
}

func TestLoginAnswersWithoutUnionIDWhenAppIsNotBound(t *testing.T) {
	f := newFake(t, wechattest.Options{})
	f.s.AddCode(appID, "c1", wechattest.User{OpenID: "oNoUnion"})
	req, _ := http.NewRequest(http.MethodGet, f.url+wechattest.PathCode2Session+"?"+url.Values{"appid": {appID}, "secret": {secret}, "js_code": {"c1"}, "grant_type": {"authorization_code"}}.Encode(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw map[string]any
	json.NewDecoder(resp.Body).Decode(&raw)
	for _, absent := range []string{"unionid", "errcode", "errmsg"} {
		if _, ok := raw[absent]; ok {
			t.Errorf("success answer has %q: %v (WeChat omits it)", absent, raw)
		}
	}
	if key, _ := base64.StdEncoding.DecodeString(raw["session_key"].(string)); len(key) != 16 {
		t.Errorf("session_key %v is not base64 of 16 bytes", raw["session_key"])
	}
}

func TestLoginCodeExpiresAfterFiveMinutes(t *testing.T) {
	clk := newClock()
	f := newFake(t, wechattest.Options{Now: clk.Now})
	f.s.AddCode(appID, "fresh", wechattest.User{OpenID: "oFresh"})
	f.s.AddCode(appID, "stale", wechattest.User{OpenID: "oStale"})
	clk.Advance(wechattest.CodeTTL - time.Second)
	if a := f.login(appID, secret, "fresh"); a.ErrCode != 0 {
		t.Fatalf("a code 4m59s old: %+v", a)
	}
	clk.Advance(2 * time.Second)
	if a := f.login(appID, secret, "stale"); a.ErrCode != wechattest.ErrInvalidCode {
		t.Fatalf("a code 5m01s old: %+v, want errcode 40029", a)
	}
}

func TestLoginChecksTheApp(t *testing.T) {
	tests := []struct {
		name          string
		appid, secret string
		want          int
	}{
		{"wrong secret", appID, "wrong", wechattest.ErrInvalidSecret},
		{"unknown appid", "wxunknown", secret, wechattest.ErrInvalidAppID},
		{"missing appid", "", secret, wechattest.ErrAppIDMissing},
		{"missing secret", appID, "", wechattest.ErrSecretMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, wechattest.Options{AutoCodes: true})
			if a := f.login(tt.appid, tt.secret, "c1"); a.ErrCode != tt.want || a.OpenID != "" {
				t.Fatalf("%+v, want errcode %d", a, tt.want)
			}
			// The refusal did not consume the code.
			f.s.AddCode(appID, "c2", wechattest.User{OpenID: "oKept"})
			f.login(tt.appid, tt.secret, "c2")
			if a := f.login(appID, secret, "c2"); a.OpenID != "oKept" {
				t.Fatalf("a refused call used the code: %+v", a)
			}
		})
	}
}

func TestLoginRejectsUnregisteredCodeWithoutAutoCodes(t *testing.T) {
	f := newFake(t, wechattest.Options{})
	if a := f.login(appID, secret, "never-issued"); a.ErrCode != wechattest.ErrInvalidCode {
		t.Fatalf("%+v, want 40029", a)
	}
	if a := f.login(appID, secret, ""); a.ErrCode != wechattest.ErrCodeMissing {
		t.Fatalf("empty code: %+v, want 41008", a)
	}
}

func TestLoginCodeOfAnotherAppIsInvalid(t *testing.T) {
	f := newFake(t, wechattest.Options{})
	f.s.AddApp("wxother", "other-secret")
	f.s.AddCode("wxother", "c1", wechattest.User{OpenID: "oOther"})
	if a := f.login(appID, secret, "c1"); a.ErrCode != wechattest.ErrInvalidCode {
		t.Fatalf("%+v, want 40029", a)
	}
}

func TestReusableCodesLogInEveryTime(t *testing.T) {
	clk := newClock()
	f := newFake(t, wechattest.Options{ReusableCodes: true, Now: clk.Now})
	f.s.AddCode(appID, "c1", wechattest.User{OpenID: "oAgain"})
	for i := range 3 {
		if a := f.login(appID, secret, "c1"); a.OpenID != "oAgain" {
			t.Fatalf("use %d: %+v", i+1, a)
		}
		clk.Advance(time.Hour)
	}
}

func TestAutoCodesAreDeterministic(t *testing.T) {
	a := newFake(t, wechattest.Options{AutoCodes: true, ReusableCodes: true, UnionID: true})
	b := newFake(t, wechattest.Options{AutoCodes: true, ReusableCodes: true, UnionID: true})
	b.s.AddApp("wxother", secret)

	x1 := a.login(appID, secret, "code-x")
	x2 := b.login(appID, secret, "code-x")
	x3 := a.login(appID, secret, "code-x")
	y := a.login(appID, secret, "code-y")
	other := b.login("wxother", secret, "code-x")

	if x1.OpenID == "" || x1.OpenID != x2.OpenID || x1.OpenID != x3.OpenID {
		t.Fatalf("same code, different openids: %q %q %q", x1.OpenID, x2.OpenID, x3.OpenID)
	}
	if x1.UnionID == "" || x1.UnionID != x2.UnionID {
		t.Fatalf("unionid %q vs %q", x1.UnionID, x2.UnionID)
	}
	if y.OpenID == x1.OpenID || other.OpenID == x1.OpenID {
		t.Fatalf("different codes or apps share an openid: %q %q %q", x1.OpenID, y.OpenID, other.OpenID)
	}
	if len(x1.OpenID) != 28 || x1.OpenID[0] != 'o' {
		t.Fatalf("openid %q is not shaped like WeChat's (28 chars, starting with o)", x1.OpenID)
	}
	if x1.SessionKey != x3.SessionKey {
		t.Fatal("the session_key changed between logins without RotateSessionKey")
	}

	noUnion := newFake(t, wechattest.Options{AutoCodes: true})
	if a := noUnion.login(appID, secret, "code-x"); a.UnionID != "" || a.OpenID != x1.OpenID {
		t.Fatalf("without UnionID: %+v", a)
	}
}

func TestAutoCodesAnswerErrcodes(t *testing.T) {
	f := newFake(t, wechattest.Options{AutoCodes: true})
	for code, want := range map[string]int{
		"errcode-40226": 40226,
		"errcode-45011": 45011,
		"errcode--1":    -1,
		"errcode-40029": 40029,
	} {
		if a := f.login(appID, secret, code); a.ErrCode != want || a.OpenID != "" {
			t.Errorf("%s: %+v, want errcode %d", code, a, want)
		}
	}
	for _, code := range []string{"errcode-abc", "errcode-0", "errcode-"} {
		if a := f.login(appID, secret, code); a.ErrCode != 0 || a.OpenID == "" {
			t.Errorf("%s should log in as an ordinary code: %+v", code, a)
		}
	}
}

func TestRotateSessionKeyGivesANewKeyEachLogin(t *testing.T) {
	f := newFake(t, wechattest.Options{AutoCodes: true, ReusableCodes: true, RotateSessionKey: true})
	k1 := f.login(appID, secret, "c").SessionKey
	k2 := f.login(appID, secret, "c").SessionKey
	if k1 == "" || k1 == k2 {
		t.Fatalf("session keys %q and %q", k1, k2)
	}
	third := f.login(appID, secret, "c")
	u, ok := f.s.User(third.OpenID)
	if !ok || u.SessionKey != third.SessionKey || u.SessionKey == k2 {
		t.Fatalf("User() does not report the current key: %+v, last login gave %q", u, third.SessionKey)
	}
}

func TestStableTokenIsSharedAndCountsDown(t *testing.T) {
	clk := newClock()
	f := newFake(t, wechattest.Options{Now: clk.Now})
	a := f.stableToken(appID, secret, false)
	clk.Advance(10 * time.Minute)
	b := f.stableToken(appID, secret, false)
	if a.AccessToken == "" || a.AccessToken != b.AccessToken {
		t.Fatalf("two callers got %q and %q; stable tokens are shared", a.AccessToken, b.AccessToken)
	}
	if a.ExpiresIn != 7200 || b.ExpiresIn != 7200-600 {
		t.Fatalf("expires_in %d then %d, want 7200 then 6600", a.ExpiresIn, b.ExpiresIn)
	}
	if f.s.ForcedRefreshes() != 0 {
		t.Fatal("forced refresh counted without force_refresh")
	}

	// After expiry a new one is issued.
	clk.Advance(2 * time.Hour)
	if c := f.stableToken(appID, secret, false); c.AccessToken == a.AccessToken || c.ExpiresIn != 7200 {
		t.Fatalf("after expiry: %+v", c)
	}
}

func TestStableTokenForceRefreshRotates(t *testing.T) {
	f := newFake(t, wechattest.Options{AutoCodes: true})
	old := f.stableToken(appID, secret, false).AccessToken
	fresh := f.stableToken(appID, secret, true).AccessToken
	if fresh == "" || fresh == old {
		t.Fatalf("force_refresh gave %q, old %q", fresh, old)
	}
	if n := f.s.ForcedRefreshes(); n != 1 {
		t.Fatalf("ForcedRefreshes() = %d, want 1", n)
	}
	if a := f.phone(old, "phone-1"); a.ErrCode != wechattest.ErrInvalidToken {
		t.Fatalf("old token after a forced refresh: %+v, want 40001", a)
	}
	if a := f.phone(fresh, "phone-1"); a.ErrCode != 0 {
		t.Fatalf("fresh token: %+v", a)
	}
}

func TestStableTokenChecksTheApp(t *testing.T) {
	f := newFake(t, wechattest.Options{})
	if a := f.stableToken(appID, "wrong", false); a.ErrCode != wechattest.ErrInvalidSecret {
		t.Fatalf("%+v, want 40125", a)
	}
	if a := f.stableToken("wxunknown", secret, false); a.ErrCode != wechattest.ErrInvalidAppID {
		t.Fatalf("%+v, want 40013", a)
	}
}

func TestClassicTokenInvalidatesThePreviousOne(t *testing.T) {
	f := newFake(t, wechattest.Options{AutoCodes: true})
	stable := f.stableToken(appID, secret, false).AccessToken
	classic := f.classicToken().AccessToken
	if a := f.phone(stable, "phone-1"); a.ErrCode != wechattest.ErrInvalidToken {
		t.Fatalf("the stable token after a classic call: %+v, want 40001", a)
	}
	if a := f.phone(classic, "phone-2"); a.ErrCode != 0 {
		t.Fatalf("classic token: %+v", a)
	}
	if n := f.s.Calls(wechattest.PathToken); n != 1 {
		t.Fatalf("Calls(PathToken) = %d, want 1", n)
	}
}

func TestInvalidatedOrExpiredAccessTokenIsRefused(t *testing.T) {
	f := newFake(t, wechattest.Options{AutoCodes: true})
	tok := f.stableToken(appID, secret, false).AccessToken
	f.s.ExpireAccessToken(appID)
	if a := f.phone(tok, "phone-1"); a.ErrCode != wechattest.ErrTokenExpired {
		t.Fatalf("expired token: %+v, want 42001", a)
	}
	tok = f.stableToken(appID, secret, false).AccessToken
	f.s.InvalidateAccessToken(appID)
	if a := f.phone(tok, "phone-1"); a.ErrCode != wechattest.ErrInvalidToken {
		t.Fatalf("invalidated token: %+v, want 40001", a)
	}
	if n := f.s.ForcedRefreshes(); n != 0 {
		t.Fatalf("ForcedRefreshes() = %d", n)
	}
}

func TestPhoneCodesAreSingleUseAndExpire(t *testing.T) {
	clk := newClock()
	f := newFake(t, wechattest.Options{AutoCodes: true, Now: clk.Now})
	f.s.AddPhoneCode("registered", wechattest.Phone{PhoneNumber: "+1 5550100", PurePhoneNumber: "5550100", CountryCode: "1"})
	tok := f.stableToken(appID, secret, false).AccessToken

	a := f.phone(tok, "registered")
	if a.ErrCode != 0 || a.PhoneInfo == nil || a.PhoneInfo.PhoneNumber != "+1 5550100" || a.PhoneInfo.PurePhoneNumber != "5550100" {
		t.Fatalf("registered phone code: %+v", a)
	}
	// WeChat shows countryCode as a number; the fake sends the harder case.
	if cc, ok := a.PhoneInfo.CountryCode.(float64); !ok || cc != 1 {
		t.Fatalf("countryCode %#v, want the number 1", a.PhoneInfo.CountryCode)
	}
	if a.PhoneInfo.Watermark.AppID != appID {
		t.Fatalf("watermark appid %q", a.PhoneInfo.Watermark.AppID)
	}
	if a := f.phone(tok, "registered"); a.ErrCode != wechattest.ErrCodeUsed {
		t.Fatalf("reused phone code: %+v, want 40163", a)
	}
	if a := f.phone(tok, "phone-13800138000"); a.ErrCode != 0 || a.PhoneInfo.PurePhoneNumber != "13800138000" {
		t.Fatalf("auto phone code: %+v", a)
	}
	for _, bad := range []string{"phone-", "phone-12a", "nonsense"} {
		if a := f.phone(tok, bad); a.ErrCode != wechattest.ErrInvalidCode {
			t.Errorf("%q: %+v, want 40029", bad, a)
		}
	}
	f.s.AddPhoneCode("late", wechattest.Phone{PhoneNumber: "1"})
	clk.Advance(wechattest.CodeTTL + time.Second)
	if a := f.phone(tok, "late"); a.ErrCode != wechattest.ErrInvalidCode {
		t.Fatalf("phone code after 5 minutes: %+v, want 40029", a)
	}
}

func TestFailNextIsOneShotAndCounted(t *testing.T) {
	f := newFake(t, wechattest.Options{AutoCodes: true, ReusableCodes: true})
	f.s.FailNext(wechattest.PathCode2Session, wechattest.ErrSystem)
	if a := f.login(appID, secret, "c"); a.ErrCode != -1 {
		t.Fatalf("%+v, want -1", a)
	}
	if a := f.login(appID, secret, "c"); a.ErrCode != 0 {
		t.Fatalf("FailNext failed twice: %+v", a)
	}

	f.s.FailNextHTTP(wechattest.PathCode2Session, http.StatusBadGateway, "<html>bad gateway</html>")
	q := url.Values{"appid": {appID}, "secret": {secret}, "js_code": {"c"}, "grant_type": {"authorization_code"}}
	resp, err := http.Get(f.url + wechattest.PathCode2Session + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("FailNextHTTP: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if n := f.s.Calls(wechattest.PathCode2Session); n != 3 {
		t.Fatalf("Calls = %d, want 3", n)
	}
}

func TestInProcessClientNeedsNoSocket(t *testing.T) {
	s := wechattest.NewServer(wechattest.Options{AutoCodes: true})
	s.AddApp(appID, secret)
	q := url.Values{"appid": {appID}, "secret": {secret}, "js_code": {"c"}, "grant_type": {"authorization_code"}}
	resp, err := s.Client().Get("http://wechat.invalid" + wechattest.PathCode2Session + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a answer
	json.NewDecoder(resp.Body).Decode(&a)
	if a.OpenID == "" || s.Calls(wechattest.PathCode2Session) != 1 {
		t.Fatalf("in-process login: %+v", a)
	}
}

func TestCheckSessionVerifiesHMACOfSessionKey(t *testing.T) {
	f := newFake(t, wechattest.Options{})
	u := f.s.AddCode(appID, "c", wechattest.User{OpenID: "oCheck"})
	tok := f.stableToken(appID, secret, false).AccessToken
	check := func(sig string) int {
		q := url.Values{"access_token": {tok}, "openid": {u.OpenID}, "signature": {sig}, "sig_method": {"hmac_sha256"}}
		req, _ := http.NewRequest(http.MethodGet, f.url+wechattest.PathCheckSession+"?"+q.Encode(), nil)
		return f.do(req).ErrCode
	}
	m := hmac.New(sha256.New, []byte(u.SessionKey))
	if got := check(hex.EncodeToString(m.Sum(nil))); got != 0 {
		t.Fatalf("valid session: errcode %d", got)
	}
	if got := check("00"); got != wechattest.ErrSessionKeyStale {
		t.Fatalf("bad signature: errcode %d, want 87009", got)
	}
}

func TestSignMatchesWeChatsPublishedVector(t *testing.T) {
	v := wechattest.SignatureVector
	if got := wechattest.Sign(v.RawData, v.SessionKey); got != v.Signature {
		t.Fatalf("Sign = %s, want %s", got, v.Signature)
	}
}

func TestEncryptIsWeChatsScheme(t *testing.T) {
	key := wechattest.NewSessionKey()
	plain := []byte(`{"openId":"o1","watermark":{"appid":"wx1","timestamp":1}}`)
	data, iv, err := wechattest.Encrypt(key, plain)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := base64.StdEncoding.DecodeString(key)
	ct, err := base64.StdEncoding.DecodeString(data)
	if err != nil || len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		t.Fatalf("encryptedData %q is not standard base64 of whole blocks", data)
	}
	ivb, err := base64.StdEncoding.DecodeString(iv)
	if err != nil || len(ivb) != aes.BlockSize {
		t.Fatalf("iv %q is not standard base64 of 16 bytes", iv)
	}
	block, _ := aes.NewCipher(k)
	cipher.NewCBCDecrypter(block, ivb).CryptBlocks(ct, ct)
	n := int(ct[len(ct)-1])
	if n < 1 || n > 16 || !bytes.Equal(ct[:len(ct)-n], plain) || !bytes.Equal(ct[len(ct)-n:], bytes.Repeat([]byte{byte(n)}, n)) {
		t.Fatalf("decrypted %q: not the plaintext with PKCS#7 padding", ct)
	}
	_, iv2, _ := wechattest.Encrypt(key, plain)
	if iv2 == iv {
		t.Fatal("two encryptions used the same iv")
	}
}

// A dropped call is counted, and is a transport error over a socket and
// in-process alike.
func TestDropNextClosesWithoutAnAnswer(t *testing.T) {
	s := wechattest.NewServer(wechattest.Options{AutoCodes: true})
	s.AddApp("wxdrop", "secret")
	srv := httptest.NewServer(s)
	defer srv.Close()
	for name, c := range map[string]*http.Client{"socket": srv.Client(), "in-process": s.Client()} {
		s.DropNext(wechattest.PathCode2Session)
		before := s.Calls(wechattest.PathCode2Session)
		resp, err := c.Get(srv.URL + wechattest.PathCode2Session + "?appid=wxdrop&secret=secret&js_code=c&grant_type=authorization_code")
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: answered %d, want a transport error", name, resp.StatusCode)
		}
		if n := s.Calls(wechattest.PathCode2Session) - before; n < 1 {
			t.Errorf("%s: dropped call not counted", name)
		}
	}
}
