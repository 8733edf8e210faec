package wechat_test

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/caddy-wechat/wechatauth/wechat"
	"github.com/caddy-wechat/wechatauth/wechattest"
)

func TestForwardAddsTheTokenAndRetriesOnceWhenWeChatRefusesIt(t *testing.T) {
	e := newEnv(t, wechattest.Options{}, wechat.Config{})
	body := []byte(`{"touser":"o1","template_id":"t","data":{"k":{"value":"v"}}}`)
	a, err := e.client.Forward(context.Background(), appID, "POST", wechattest.PathSubscribeSend, "lang=en", "application/json", body)
	if err != nil || a.Status != 200 || a.Errcode != 0 {
		t.Fatalf("%+v %v", a, err)
	}
	if q := e.fake.LastQuery(wechattest.PathSubscribeSend); q != "lang=en&access_token="+e.fake.AccessToken(appID) {
		t.Fatalf("WeChat got query %q", q)
	}
	e.fake.InvalidateAccessToken(appID)
	if a, err = e.client.Forward(context.Background(), appID, "POST", wechattest.PathSubscribeSend, "", "application/json", body); err != nil || a.Errcode != 0 {
		t.Fatalf("after an invalidated token: %+v %v", a, err)
	}
	if n := e.fake.Calls(wechattest.PathStableToken); n != 2 {
		t.Errorf("%d stable_token calls, want 2", n)
	}
	// Refused twice: WeChat's answer, no third try.
	e.fake.FailNext(wechattest.PathSubscribeSend, 40014)
	e.fake.FailNext(wechattest.PathSubscribeSend, 42001)
	before := e.fake.Calls(wechattest.PathSubscribeSend)
	a, err = e.client.Forward(context.Background(), appID, "POST", wechattest.PathSubscribeSend, "", "application/json", body)
	if err != nil || a.Errcode != 42001 || e.fake.Calls(wechattest.PathSubscribeSend) != before+2 {
		t.Fatalf("refused twice: %+v %v, %d calls", a, err, e.fake.Calls(wechattest.PathSubscribeSend)-before)
	}
	if e.fake.ForcedRefreshes() != 0 {
		t.Error("a forced refresh was made")
	}
}

func TestForwardNeverFollowsARedirectNorLeaksTheToken(t *testing.T) {
	var followed int
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { followed++ }))
	t.Cleanup(elsewhere.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == wechattest.PathStableToken {
			w.Write([]byte(`{"access_token":"TOKEN-do-not-leak","expires_in":7200}`))
			return
		}
		http.Redirect(w, r, elsewhere.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	c := wechat.New(wechat.Config{BaseURL: srv.URL, Apps: map[string]string{appID: secret}})
	_, err := c.Forward(context.Background(), appID, "GET", "/wxa/x", "", "", nil)
	var ue *wechat.UnavailableError
	if !errors.As(err, &ue) || followed != 0 {
		t.Fatalf("err %v, followed %d times; want unavailable, never followed", err, followed)
	}
	if strings.Contains(err.Error(), "TOKEN") {
		t.Fatalf("the error holds the token: %v", err)
	}
}

func TestForwardReplacesAnEchoedToken(t *testing.T) {
	e := newEnv(t, wechattest.Options{}, wechat.Config{})
	e.fake.HostileNext(wechattest.PathSubscribeSend, wechattest.EchoJSON)
	a, err := e.client.Forward(context.Background(), appID, "POST", wechattest.PathSubscribeSend, "", "application/json", []byte(`{}`))
	tok := e.fake.AccessToken(appID)
	if err != nil || tok == "" {
		t.Fatalf("%+v %v", a, err)
	}
	if strings.Contains(string(a.Body), tok) || strings.Contains(a.ContentType, tok) {
		t.Fatalf("the answer holds the token: %s %s", a.ContentType, a.Body)
	}
	if !strings.Contains(string(a.Body), "access_token="+wechat.TokenPlaceholder) {
		t.Fatalf("the token was not replaced: %s", a.Body)
	}
}

// forwardTo forwards one call to a WeChat at which answers every call
// but the token's, which hands out tok.
func forwardTo(t *testing.T, tok string, answer http.HandlerFunc) (*wechat.Answer, error) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == wechattest.PathStableToken {
			w.Write([]byte(`{"access_token":"` + tok + `","expires_in":7200}`))
			return
		}
		answer(w, r)
	}))
	defer srv.Close()
	c := wechat.New(wechat.Config{BaseURL: srv.URL, Apps: map[string]string{appID: secret}})
	return c.Forward(context.Background(), appID, "POST", "/cgi-bin/message/subscribe/send", "", "application/json", []byte(`{}`))
}

// wantRefused fails unless the forward was refused as unavailable.
func wantRefused(t *testing.T, name string, a *wechat.Answer, err error) {
	t.Helper()
	var ue *wechat.UnavailableError
	if !errors.As(err, &ue) || a != nil {
		t.Errorf("%s: %+v %v, want unavailable and no answer", name, a, err)
	}
}

// An encoded answer cannot be searched for an echoed token: the gateway
// asks for none, and one that comes encoded anyway (in any header line or
// list) is never passed on. One that says identity is, with the token
// replaced.
func TestForwardRefusesAnAnswerInAnEncodingItDidNotAskFor(t *testing.T) {
	const tok = "TOKEN-do-not-leak"
	echo := func(r *http.Request) []byte {
		return []byte(`{"errcode":40029,"errmsg":"echo ` + r.URL.RequestURI() + `"}`)
	}
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(b)
		zw.Close()
		return buf.Bytes()
	}
	for _, tc := range []struct {
		encoding string
		encode   func([]byte) []byte
		passed   bool
	}{
		{"gzip\ngzip", func(b []byte) []byte { return gz(gz(b)) }, false},
		{"identity\ndeflate", func(b []byte) []byte { return b }, false},
		{"identity, gzip", gz, false},
		{"IDENTITY", func(b []byte) []byte { return b }, true},
		{"deflate", func(b []byte) []byte {
			var buf bytes.Buffer
			zw := zlib.NewWriter(&buf)
			zw.Write(b)
			zw.Close()
			return buf.Bytes()
		}, false},
		{"br", func(b []byte) []byte { return b }, false},
		{"gzip", gz, false},
		{"identity", func(b []byte) []byte { return b }, true},
	} {
		a, err := forwardTo(t, tok, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Accept-Encoding") != "identity" {
				t.Errorf("%s: the gateway asked for Accept-Encoding %q", tc.encoding, r.Header.Get("Accept-Encoding"))
			}
			w.Header().Set("Content-Type", "application/json")
			for _, ce := range strings.Split(tc.encoding, "\n") {
				w.Header().Add("Content-Encoding", ce)
			}
			w.Write(tc.encode(echo(r)))
		})
		if !tc.passed {
			wantRefused(t, tc.encoding, a, err)
			continue
		}
		if err != nil || a.Errcode != 40029 || bytes.Contains(a.Body, []byte(tok)) || !bytes.Contains(a.Body, []byte("access_token="+wechat.TokenPlaceholder)) {
			t.Errorf("%s: %+v %v, want the answer with the token replaced", tc.encoding, a, err)
		}
	}
}

// An answer that holds the access token in a spelling the gateway cannot
// replace (percent-encoded otherwise than Go does, JSON, JavaScript or
// HTML escapes, UTF-16 or UTF-32, any of these nested, in text that need
// not be well-formed) is never passed on; the plain and Go-escaped
// spellings are replaced, and WeChat's own answers, escapes and all, pass.
func TestForwardNeverPassesOnTheTokenInAnotherSpelling(t *testing.T) {
	const tok = "AbC+/tok=EN-123_xyz"
	allPercent := func(s string) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			fmt.Fprintf(&b, "%%%02X", s[i])
		}
		return b.String()
	}
	jsonU := func(s string) string {
		var b strings.Builder
		for _, r := range s {
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		return b.String()
	}
	hexX := func(s string) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			fmt.Fprintf(&b, `\x%02x`, s[i])
		}
		return b.String()
	}
	htmlRef := func(s, format string) string {
		var b strings.Builder
		for _, r := range s {
			fmt.Fprintf(&b, format, r)
		}
		return b.String()
	}
	// wide spells s in UTF-16 (size 2) or UTF-32 (size 4), big-endian or not.
	wide := func(s string, size int, bigEndian bool) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			unit := make([]byte, size)
			if bigEndian {
				unit[size-1] = s[i]
			} else {
				unit[0] = s[i]
			}
			b.Write(unit)
		}
		return b.String()
	}
	// percentDigits percent-encodes the hex digits of \\u escapes.
	percentDigits := func(s string) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			if s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f' {
				fmt.Fprintf(&b, "%%%02X", s[i])
				continue
			}
			b.WriteByte(s[i])
		}
		return b.String()
	}
	// nested percent-encodes s every byte, then the result n-1 times more.
	nested := func(s string, n int) string {
		s = allPercent(s)
		for range n - 1 {
			s = strings.ReplaceAll(s, "%", "%25")
		}
		return s
	}
	for _, tc := range []struct {
		name, body string
		passed     bool
	}{
		{"as sent", `{"errmsg":"` + tok + `"}`, true},
		{"query-escaped", `{"errmsg":"` + url.QueryEscape(tok) + `"}`, true},
		{"lower-case percent", `{"errmsg":"` + strings.NewReplacer("%2B", "%2b", "%2F", "%2f", "%3D", "%3d").Replace(url.QueryEscape(tok)) + `"}`, false},
		{"every byte percent-encoded", `<p>` + allPercent(tok) + `</p>`, false},
		{"JSON \\u escapes", `{"errmsg":"` + jsonU(tok) + `"}`, false},
		{"JSON escaped slash", `{"errmsg":"` + strings.ReplaceAll(tok, "/", `\/`) + `"}`, false},
		// Escaped where the text is not one well-formed JSON value.
		{"\\u escapes after a byte-order mark", "\ufeff" + `{"errmsg":"` + jsonU(tok) + `"}`, false},
		{"\\u escapes beside a number JSON cannot hold", `{"a":1e999,"m":"` + jsonU(tok) + `"}`, false},
		{"\\u escapes after a stray comma", `{"errcode":0,,"m":"` + jsonU(tok) + `"}`, false},
		{"\\u escapes in JSONP", `cb({"m":"` + jsonU(tok) + `"})`, false},
		{"\\x escapes in a script", `<script>t='` + hexX(tok) + `'</script>`, false},
		{"percent-encoded twice", `<p>` + strings.ReplaceAll(allPercent(tok), "%", "%25") + `</p>`, false},
		{"\\u escapes of percent escapes", `{"m":"` + jsonU(allPercent(tok)) + `"}`, false},
		{"HTML decimal references", `<p>` + htmlRef(tok, "&#%d;") + `</p>`, false},
		{"HTML hex references without ';'", `<p>` + htmlRef(tok, "&#x%x") + ` </p>`, false},
		{"UTF-16LE with its mark", "\xff\xfe" + wide(`{"m":"`+tok+`"}`, 2, false), false},
		{"UTF-32BE", wide(`{"m":"`+tok+`"}`, 4, true), false},
		{"percent-encoded eight times over", nested(tok, 8), false},
		// A backslash is text in HTML; it must not eat the & or % after it.
		{"HTML references behind 255 backslashes", `<p>` + strings.Repeat(`\`, 255) + htmlRef(tok, "&#%d;") + `</p>`, false},
		{"HTML references with ten digits", `<p>` + htmlRef(tok, "&#%010d;") + `</p>`, false},
		{"\\u escapes whose digits are percent-encoded", `{"m":"` + percentDigits(jsonU(tok)) + `"}`, false},
		{"no token", `{"errcode":0,"errmsg":"ok \u0041"}`, true},
		{"WeChat's error with escapes and a URL", `{"errcode":40001,"errmsg":"invalid credential, access_token is invalid or not latest, more details at https:\/\/mmbizurl.cn\/s\/JtxxFh33r rid: 6752d5d6-1a2b3c4d-5e6f7a8b \u4f60\u597d %E4%BD%A0 &#20320;"}`, true},
	} {
		a, err := forwardTo(t, tok, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(tc.body)) })
		if !tc.passed {
			wantRefused(t, tc.name, a, err)
			continue
		}
		if err != nil || bytes.Contains(a.Body, []byte(tok)) || bytes.Contains(a.Body, []byte(url.QueryEscape(tok))) {
			t.Errorf("%s: %+v %v, want the answer, the token replaced", tc.name, a, err)
		}
	}
}

// An echo cut short (an egress proxy's error page that truncates the URL)
// or cut off at its start gives the caller all but a few characters of the
// token: its first or last 16 characters, in any spelling, are enough to
// refuse the answer. Fewer are no leak worth the name.
func TestForwardNeverPassesOnAPieceOfTheToken(t *testing.T) {
	const tok = "86_Hq3xVd0Tn7kP2mWbZr5Ls9YcF1gJ4uE8aQ6oI0tR3yN7vB2xK5pM9wD1hS4fG8zC"
	for _, tc := range []struct {
		name, body string
		passed     bool
	}{
		{"cut short by one character", `<p>GET /wxa/x?access_token=` + tok[:len(tok)-1] + `</p>`, false},
		{"cut short, percent-encoded", `<p>` + url.QueryEscape("/wxa/x?access_token=" + tok)[:60] + `</p>`, false},
		{"cut off at its start", `{"errmsg":"…` + tok[20:] + `"}`, false},
		{"its first 16 characters", `<p>access_token=` + tok[:16] + `</p>`, false},
		{"its first 15 characters", `<p>access_token=` + tok[:15] + `</p>`, true},
	} {
		a, err := forwardTo(t, tok, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(tc.body)) })
		if !tc.passed {
			wantRefused(t, tc.name, a, err)
			continue
		}
		if err != nil {
			t.Errorf("%s: %v, want the answer", tc.name, err)
		}
	}
}

// A binary answer (a mini program code's PNG, a media file) passes as it
// is, whatever its bytes: escapes the token search decodes, found all over
// random bytes, never make it look like one holding the token.
func TestForwardPassesABinaryAnswerAsItIs(t *testing.T) {
	png := randomBytes(1 << 20)
	a, err := forwardTo(t, "AbC+/tok=EN-123_xyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(png)
	})
	if err != nil || !bytes.Equal(a.Body, png) {
		t.Fatalf("a 1 MiB binary answer: %v, body equal: %v; want it passed as it is", err, a != nil && bytes.Equal(a.Body, png))
	}
}

// BenchmarkForwardBinaryAnswer is the token search's cost on a 1 MiB
// binary answer, the worst case: its bytes change in every round of
// decoding.
func BenchmarkForwardBinaryAnswer(b *testing.B) {
	png := randomBytes(1 << 20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == wechattest.PathStableToken {
			w.Write([]byte(`{"access_token":"AbC+/tok=EN-123_xyz","expires_in":7200}`))
			return
		}
		w.Write(png)
	}))
	defer srv.Close()
	c := wechat.New(wechat.Config{BaseURL: srv.URL, Apps: map[string]string{appID: secret}})
	b.SetBytes(int64(len(png)))
	for b.Loop() {
		if _, err := c.Forward(context.Background(), appID, "GET", "/cgi-bin/media/get", "", "", nil); err != nil {
			b.Fatal(err)
		}
	}
}

// randomBytes is n bytes of a fixed pseudo-random sequence.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	cc := rand.NewChaCha8([32]byte{1})
	cc.Read(b)
	return b
}
