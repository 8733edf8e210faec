package wechattest_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

func sig(key string) string {
	m := hmac.New(sha256.New, []byte(key))
	return hex.EncodeToString(m.Sum(nil))
}

func (f *fake) sessionAPI(path, token, openid, signature string) answer {
	f.t.Helper()
	q := url.Values{"access_token": {token}, "openid": {openid}, "signature": {signature}, "sig_method": {"hmac_sha256"}}
	req, _ := http.NewRequest(http.MethodGet, f.url+path+"?"+q.Encode(), nil)
	return f.do(req)
}

func TestResetSessionKeyNeedsTheCurrentKeyAndRotatesIt(t *testing.T) {
	f := newFake(t, wechattest.Options{})
	u := f.s.AddCode(appID, "c", wechattest.User{OpenID: "oReset"})
	tok := f.stableToken(appID, secret, false).AccessToken
	if a := f.sessionAPI(wechattest.PathCheckSession, tok, u.OpenID, sig("stale")); a.ErrCode != wechattest.ErrSessionKeyStale {
		t.Fatalf("a wrong signature: errcode %d", a.ErrCode)
	}
	if a := f.sessionAPI(wechattest.PathResetSessionKey, "not-a-token", u.OpenID, sig(u.SessionKey)); a.ErrCode != wechattest.ErrInvalidToken {
		t.Fatalf("a token the fake never issued: errcode %d", a.ErrCode)
	}
	a := f.sessionAPI(wechattest.PathResetSessionKey, tok, u.OpenID, sig(u.SessionKey))
	if a.ErrCode != 0 || a.SessionKey == "" || a.SessionKey == u.SessionKey || a.OpenID != u.OpenID {
		t.Fatalf("reset answered %+v", a)
	}
	if a := f.sessionAPI(wechattest.PathCheckSession, tok, u.OpenID, sig(u.SessionKey)); a.ErrCode != wechattest.ErrSessionKeyStale {
		t.Fatalf("the old key still passes checksession: errcode %d", a.ErrCode)
	}
	if a2 := f.sessionAPI(wechattest.PathCheckSession, tok, u.OpenID, sig(a.SessionKey)); a2.ErrCode != 0 {
		t.Fatalf("the new key fails checksession: errcode %d", a2.ErrCode)
	}
}

// Sandbox users are stored nowhere, yet checksession and a reset work
// for them, and the next login gives the reset key.
func TestSandboxUsersHaveCheckableKeys(t *testing.T) {
	f := newFake(t, wechattest.Options{AutoCodes: true, ReusableCodes: true})
	l := f.login(appID, secret, "demo")
	tok := f.stableToken(appID, secret, false).AccessToken
	if a := f.sessionAPI(wechattest.PathCheckSession, tok, l.OpenID, sig(l.SessionKey)); a.ErrCode != 0 {
		t.Fatalf("checksession for a sandbox login: errcode %d", a.ErrCode)
	}
	r := f.sessionAPI(wechattest.PathResetSessionKey, tok, l.OpenID, sig(l.SessionKey))
	if again := f.login(appID, secret, "demo"); again.SessionKey != r.SessionKey || again.OpenID != l.OpenID {
		t.Fatalf("after a reset the login gives %q, want the reset key %q", again.SessionKey, r.SessionKey)
	}
}

func TestQRCodeIsAPNGOfTheScene(t *testing.T) {
	f := newFake(t, wechattest.Options{})
	tok := f.stableToken(appID, secret, false).AccessToken
	resp, err := http.Post(f.url+wechattest.PathQRCode+"?access_token="+tok, "application/json", bytes.NewReader([]byte(`{"scene":"s=1"}`)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Content-Type") != "image/png" || !bytes.Equal(body, wechattest.QRCode("s=1")) || !bytes.HasPrefix(body, []byte("\x89PNG")) {
		t.Fatalf("QR code answer %s %q", resp.Header.Get("Content-Type"), body[:min(16, len(body))])
	}
	if bytes.Equal(wechattest.QRCode("s=1"), wechattest.QRCode("s=2")) {
		t.Fatal("two scenes give the same image")
	}
}
