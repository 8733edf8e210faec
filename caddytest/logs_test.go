package caddytest

// Acceptance points covered here (issue 2, issue 5):
//   - A DEBUG-level log of a session with logins (JSON and form), a
//     refresh, decryptions (good and failed), phone calls (code and old
//     button), failures of WeChat and of tokens, and a logout contains no app
//     secret, session_key, signing key, login or phone code, token,
//     encryptedData or iv — while it does hold wechat_auth's own lines.
//   - A WeChat configuration error (40125: wrong app secret) is logged once
//     at ERROR with the fix the operator must make, however many logins hit
//     it, and each such login answers 500 config_error.
//   - Sandbox mode logs a warning at start.
//   - (issue 20, point 6) Caddy's DEBUG log prints the signed assertion
//     that reverse_proxy sends upstream (it redacts only Authorization and
//     Cookie): every assertion the log holds lives at most 60 s (exp-iat).

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

// logLine is one JSON line of Caddy's log.
type logLine struct {
	Level  string `json:"level"`
	Logger string `json:"logger"`
	Msg    string `json:"msg"`
}

func parseLog(t *testing.T, text string) []logLine {
	t.Helper()
	var lines []logLine
	for _, l := range strings.Split(text, "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		var ll logLine
		if err := json.Unmarshal([]byte(l), &ll); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		lines = append(lines, ll)
	}
	return lines
}

// stopFileLog loads a config without a log block, so Caddy's log goes back
// to stderr and the file of debugLog is complete.
func stopFileLog(t *testing.T) {
	t.Helper()
	loadCaddy(t, globalOptions("")+"\nhttp://localhost:9080 {\n\trespond ok\n}\n")
}

func TestDebugLogHoldsNoSecrets(t *testing.T) {
	logPath, logOption := debugLog(t)
	st := startStack(t, stackConfig{Global: logOption})

	// Distinctive codes, so finding one in the log is never a coincidence.
	const (
		jsonCode  = "LOGINCODE-json-Zq8Xv3Lm9P"
		formCode  = "LOGINCODE-form-Hk4Jd8Wq2R"
		usedCode  = "LOGINCODE-used-Tb7Nc5Ys1E"
		phoneCode = "PHONECODE-Gf6Vp0Ka3M"
	)
	secrets := map[string]string{
		"app secret":         testSecret,
		"signing key":        testSigningKey,
		"vector session_key": vector.SessionKey,
		"JSON login code":    jsonCode,
		"form login code":    formCode,
		"used login code":    usedCode,
		"phone code":         phoneCode,
		"encryptedData":      vector.EncryptedData[:40],
		"iv":                 vector.IV,
	}

	st.WeChat.AddCode(testAppID, jsonCode, wechattest.User{OpenID: vector.OpenID, UnionID: vector.UnionID, SessionKey: vector.SessionKey})
	formUser := st.addUser(formCode)
	secrets["form user's session_key"] = formUser.SessionKey
	st.WeChat.AddErrorCode(testAppID, usedCode, wechattest.ErrCodeUsed)
	st.WeChat.AddPhoneCode(phoneCode, testPhone)

	lr := st.login(t, jsonCode)
	r := postForm(t, st.Base+"/wx/login", "", url.Values{"code": {formCode}})
	wantStatus(t, r, http.StatusOK)
	formToken := r.Object(t)["token"].(string)
	wantError(t, postJSON(t, st.Base+"/wx/login", "", map[string]string{"code": usedCode}), http.StatusUnauthorized, "invalid_code")
	st.WeChat.FailNextHTTP(wechattest.PathCode2Session, http.StatusBadGateway, "<html>502</html>")
	st.addUser("LOGINCODE-502-Qw1Er2Ty3U")
	secrets["code of a login WeChat failed"] = "LOGINCODE-502-Qw1Er2Ty3U"
	wantStatus(t, postJSON(t, st.Base+"/wx/login", "", map[string]string{"code": "LOGINCODE-502-Qw1Er2Ty3U"}), http.StatusServiceUnavailable)

	r = post(t, st.Base+"/wx/refresh", lr.Token, "", "")
	wantStatus(t, r, http.StatusOK)
	refreshed := r.Object(t)["token"].(string)
	wantStatus(t, postJSON(t, st.Base+"/wx/userinfo", lr.Token, map[string]string{"encryptedData": vector.EncryptedData, "iv": vector.IV}), http.StatusOK)
	wantError(t, postJSON(t, st.Base+"/wx/userinfo", lr.Token, map[string]string{"encryptedData": tamper(t, -5), "iv": vector.IV}), http.StatusBadRequest, "decrypt_failed")
	wantError(t, postJSON(t, st.Base+"/wx/userinfo", formToken, map[string]string{"encryptedData": vector.EncryptedData, "iv": vector.IV}), http.StatusBadRequest, "decrypt_failed")
	wantPhone(t, postJSON(t, st.Base+"/wx/phone", lr.Token, map[string]string{"code": phoneCode}), testPhone)
	oldEnc, oldIV := encryptFor(t, formUser.SessionKey, map[string]any{"phoneNumber": "13800138000", "purePhoneNumber": "13800138000", "countryCode": "86", "watermark": map[string]any{"appid": testAppID, "timestamp": 1}})
	secrets["old-button encryptedData"] = oldEnc[:40]
	wantStatus(t, postJSON(t, st.Base+"/wx/phone", formToken, map[string]string{"encryptedData": oldEnc, "iv": oldIV}), http.StatusOK)
	wantError(t, get(t, st.Base+"/api", lr.Token[:len(lr.Token)-3]+"xyz"), http.StatusUnauthorized, "invalid_token")
	wantStatus(t, get(t, st.Base+"/api", refreshed), http.StatusOK)
	wantStatus(t, post(t, st.Base+"/wx/logout", refreshed, "", ""), http.StatusNoContent)
	wantError(t, get(t, st.Base+"/api", lr.Token), http.StatusUnauthorized, "invalid_token")

	secrets["login token"] = lr.Token
	secrets["login token's signature"] = lr.Token[lastDot(lr.Token)+1:]
	secrets["form login token"] = formToken
	secrets["refreshed token"] = refreshed

	stopFileLog(t)
	logText := readFile(t, logPath)

	lines := parseLog(t, logText)
	var own, debug int
	for _, l := range lines {
		if strings.Contains(l.Logger, "wechat_auth") {
			own++
			if l.Level == "debug" {
				debug++
			}
		}
	}
	t.Logf("the log has %d lines, %d of them wechat_auth's (%d at DEBUG)", len(lines), own, debug)
	if own == 0 || debug == 0 {
		t.Fatalf("the log holds no DEBUG line of wechat_auth; the test would prove nothing:\n%s", logText)
	}
	for name, s := range secrets {
		if strings.Contains(logText, s) {
			t.Errorf("the DEBUG log contains the %s", name)
		}
		if esc := strings.Trim(string(mustJSON(t, s)), `"`); esc != s && strings.Contains(logText, esc) {
			t.Errorf("the DEBUG log contains the %s (JSON-escaped)", name)
		}
	}
}

// TestLoggedAssertionIsShortLived: with assertion on and a DEBUG log,
// reverse_proxy's "upstream roundtrip" line prints the request headers,
// the assertion among them. Such a line must hold nothing a reader of the
// log could replay for long: the assertion it holds is the one the
// logAssertedRequest runs a site with assertion on and Caddy's log set by
// the global option logOption (writing to logPath), sends one proxied
// request as the user of loginCode, and returns the user's openid, the
// assertion the upstream got and the log. The log must hold
// reverse_proxy's DEBUG line, or a test reading it would prove nothing.
func logAssertedRequest(t *testing.T, logOption, logPath, loginCode string) (openid, sent, logText string) {
	t.Helper()
	st := startStack(t, stackConfig{Global: logOption, Directive: "\t\tassertion\n"})
	u := st.addUser(loginCode)
	lr := st.login(t, loginCode)
	wantStatus(t, get(t, st.Base+"/api", lr.Token), http.StatusOK)
	sent = st.Upstream.Last(t).Header.Get("X-Wx-Assertion")
	if sent == "" {
		t.Fatal("the upstream got no assertion")
	}
	stopFileLog(t)
	logText = readFile(t, logPath)
	if !strings.Contains(logText, "upstream roundtrip") {
		t.Fatalf("the log holds no reverse_proxy DEBUG line; the test would prove nothing:\n%s", logText)
	}
	return u.OpenID, sent, logText
}

// upstream got, and its exp is at most 60 s after its iat.
func TestLoggedAssertionIsShortLived(t *testing.T) {
	logPath, logOption := debugLog(t)
	openid, sent, logText := logAssertedRequest(t, logOption, logPath, "LOGINCODE-assert-Pq2Wd8Ks4N")
	found := 0
	for _, m := range regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`).FindAllString(logText, -1) {
		c := jwt.MapClaims{}
		if _, _, err := jwt.NewParser().ParseUnverified(m, c); err != nil || c["iss"] != "wechat_auth" || c["sub"] != openid {
			continue
		}
		found++
		iat, err1 := c.GetIssuedAt()
		exp, err2 := c.GetExpirationTime()
		if err1 != nil || err2 != nil || iat == nil || exp == nil {
			t.Fatalf("a logged assertion has no iat/exp: %v", c)
		}
		if life := exp.Sub(iat.Time); life > 60*time.Second {
			t.Errorf("the DEBUG log holds an assertion that lives %v (iat %v, exp %v): at most 60 s", life, iat, exp)
		}
	}
	if strings.Contains(logText, sent) && found == 0 {
		t.Fatal("the assertion is in the log but was not recognised")
	}
	t.Logf("the DEBUG log holds %d assertion(s)", found)
}

func TestWeChatConfigErrorLoggedOnceAtError(t *testing.T) {
	logPath, logOption := debugLog(t)
	st := startStack(t, stackConfig{Global: logOption})
	// The operator's secret is wrong: WeChat answers 40125 to every login.
	st.WeChat.AddApp(testAppID, "the-secret-wechat-actually-has-0123456789")
	for i := range 3 {
		code := "config-error-" + string(rune('a'+i))
		st.addUser(code)
		body := wantError(t, postJSON(t, st.Base+"/wx/login", "", map[string]string{"code": code}), http.StatusInternalServerError, "config_error")
		if body["wechat_errcode"] != float64(wechattest.ErrInvalidSecret) {
			t.Errorf("wechat_errcode %v, want %d", body["wechat_errcode"], wechattest.ErrInvalidSecret)
		}
	}
	stopFileLog(t)
	logText := readFile(t, logPath)

	var errorLines []logLine
	for _, l := range parseLog(t, logText) {
		if strings.Contains(l.Logger, "wechat_auth") && l.Level == "error" {
			errorLines = append(errorLines, l)
		}
	}
	if len(errorLines) != 1 {
		t.Fatalf("%d ERROR lines of wechat_auth for three logins hitting 40125, want 1:\n%s", len(errorLines), logText)
	}
	if msg := errorLines[0].Msg; !strings.Contains(msg, "app_secret") {
		t.Errorf("the ERROR line does not tell the operator to fix app_secret: %q", msg)
	}
	if strings.Contains(logText, testSecret) {
		t.Errorf("the log contains the app secret")
	}
}

func TestSandboxLogsWarningAtStart(t *testing.T) {
	logPath, logOption := debugLog(t)
	up := startUpstream(t)
	cf := globalOptions(logOption) + wechatSite(siteBase, "\t\tsandbox\n", up.Addr, "")
	loadCaddy(t, cf)
	stopFileLog(t)
	for _, l := range parseLog(t, readFile(t, logPath)) {
		if strings.Contains(l.Logger, "wechat_auth") && l.Level == "warn" && strings.Contains(l.Msg, "sandbox") {
			return
		}
	}
	t.Errorf("no warning that sandbox is on in the log")
}

// securityLogFilter returns a log block that SECURITY.md tells operators
// to add (its caddyfile block that mentions field), writing to logPath,
// indented one tab for a site or the global options.
func securityLogFilter(t *testing.T, field, logPath string) string {
	t.Helper()
	doc := readFile(t, filepath.Join("..", "SECURITY.md"))
	for _, block := range strings.Split(doc, "```caddyfile\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		if !strings.Contains(block, field) {
			continue
		}
		var out strings.Builder
		for i, line := range strings.Split(strings.TrimRight(block, " \n"), "\n") {
			out.WriteString("\t" + strings.TrimPrefix(line, "  ") + "\n")
			if i == 0 {
				out.WriteString("\t\toutput file " + logPath + "\n")
			}
		}
		return out.String()
	}
	t.Fatalf("SECURITY.md has no caddyfile block filtering %s", field)
	return ""
}

// queryParam returns the parameter name of the URL u, which must have it.
func queryParam(t *testing.T, u, name string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil || pu.Query().Get(name) == "" {
		t.Fatalf("%q has no %s", u, name)
	}
	return pu.Query().Get(name)
}

// A site's access log writes each request's URI. With the filter
// SECURITY.md gives, it holds neither the web login's OAuth code, nor a
// handoff link's ticket, nor a token a client sent in the query; without
// it, it holds them all (so the check below can see them).
func TestAccessLogFilterKeepsWebCodesOut(t *testing.T) {
	for _, filtered := range []bool{false, true} {
		logPath := filepath.Join(t.TempDir(), "access.log")
		block := "\tlog {\n\t\toutput file " + logPath + "\n\t}\n"
		if filtered {
			block = securityLogFilter(t, "request>uri regexp", logPath)
		}
		st := webStack(t, "", "")
		loadCaddy(t, strings.Replace(st.Caddyfile, siteBase+" {\n", siteBase+" {\n"+block, 1))

		// A QR login: its callback carries WeChat's code.
		_, step := jarClient(t)
		callback := beginLogin(step, "logged-user")
		code := queryParam(t, callback, "code")
		if resp := step(callback); resp.StatusCode != http.StatusFound {
			t.Fatalf("callback answered %d: %s", resp.StatusCode, resp.Header.Get("X-Body"))
		}
		// A web-view handoff: its link carries a ticket.
		st.addUser("logged-mini")
		lr := st.login(t, "logged-mini")
		link := handoffLink(t, lr.Token, "/")
		ticket := queryParam(t, link, "ticket")
		if resp := step(link); resp.StatusCode != http.StatusFound {
			t.Fatalf("handoff link answered %d: %s", resp.StatusCode, resp.Header.Get("X-Body"))
		}
		// A client that sends its token in the query is refused, and its
		// URI logged.
		wantStatus(t, get(t, siteBase+"/api/q?token="+lr.Token+"&Access_Token="+lr.Token, ""), http.StatusUnauthorized)
		stopFileLog(t) // flushes and closes the access log

		text := readFile(t, logPath)
		for _, path := range []string{"/wx/web/callback", "/wx/web/handoff", "/api/q"} {
			if !strings.Contains(text, path) {
				t.Fatalf("filtered=%v: the access log has no %s line:\n%s", filtered, path, text)
			}
		}
		for what, secret := range map[string]string{"OAuth code": code, "handoff ticket": ticket, "token": lr.Token} {
			if got := strings.Contains(text, secret); got == filtered {
				t.Errorf("filtered=%v: the access log holds the %s: %v", filtered, what, got)
			}
		}
	}
}

// At DEBUG, reverse_proxy logs the headers it sends upstream, the
// assertion among them. With the filter SECURITY.md gives for the global
// log, the DEBUG log holds no assertion; without it, it does.
func TestDebugLogFilterKeepsTheAssertionOut(t *testing.T) {
	for _, filtered := range []bool{false, true} {
		logPath, option := debugLog(t)
		if filtered {
			option = securityLogFilter(t, "request>headers>X-Wx-Assertion delete", logPath)
		}
		_, sent, text := logAssertedRequest(t, option, logPath, "assert-filter")
		if got := strings.Contains(text, sent); got == filtered {
			t.Errorf("filtered=%v: the DEBUG log holds the assertion: %v", filtered, got)
		}
	}
}

// TestLiteralSecretInAHandlersLinesIsWarnedOf: a handler's lines are part
// of the http app's config, which Caddy prints whole at level DEBUG, so a
// secret written there as it is gets one WARN naming its field, never its
// value; the same secrets given as placeholders get none.
func TestLiteralSecretInAHandlersLinesIsWarnedOf(t *testing.T) {
	up := startUpstream(t)
	t.Setenv("WECHAT_TEST_APP_SECRET", testSecret)
	t.Setenv("WECHAT_TEST_SIGNING_KEY", testSigningKey)
	warnings := func(t *testing.T, secret, key string) []string {
		logPath, logOption := debugLog(t)
		lines := fmt.Sprintf("\t\tapp_id %s\n\t\tapp_secret %s\n\t\tsigning_key %s\n", testAppID, secret, key)
		loadCaddy(t, globalOptions(logOption)+wechatSite(siteBase, lines, up.Addr, ""))
		stopFileLog(t)
		text := readFile(t, logPath)
		var found []string
		for _, l := range strings.Split(text, "\n") {
			if strings.Contains(l, `"level":"warn"`) && strings.Contains(l, "written as it is") {
				found = append(found, l)
				if strings.Contains(l, testSecret) || strings.Contains(l, testSigningKey) {
					t.Errorf("the warning holds the secret: %s", l)
				}
			}
		}
		return found
	}
	// Subtests: loadCaddy takes a test already failed for a failed load.
	t.Run("wechat_auth literal", func(t *testing.T) {
		got := warnings(t, testSecret, testSigningKey)
		if len(got) != 1 || !strings.Contains(got[0], `"fields":["signing_key","app_secret"]`) {
			t.Errorf("literal app_secret and signing_key: want one WARN naming both, got %q", got)
		}
	})
	t.Run("wechat_auth placeholders", func(t *testing.T) {
		if got := warnings(t, "{env.WECHAT_TEST_APP_SECRET}", "{env.WECHAT_TEST_SIGNING_KEY}"); len(got) != 0 {
			t.Errorf("placeholders: want no WARN, got %q", got)
		}
	})
	t.Run("wechat_push and wechat_api literal", func(t *testing.T) { wantPushAndGatewayWarned(t, up.Addr) })
}

// wantPushAndGatewayWarned: wechat_push's literal token and aes_key, and
// wechat_api's literal app_secret, are each named in one WARN.
func wantPushAndGatewayWarned(t *testing.T, upAddr string) {
	logPath, logOption := debugLog(t)
	loadPushSite(t, logOption, pushHandler(pushPath, pushLines("http://"+upAddr+"/push", "")),
		fmt.Sprintf("\twechat_api /cgi-bin/* {\n\t\tapp_id %s\n\t\tapp_secret %s\n\t\tallow /wxa/msg_sec_check\n\t}\n", testAppID, testSecret))
	stopFileLog(t)
	want := map[string]string{"wechat_push": `"fields":["token","aes_key"]`, "wechat_api": `"fields":["app_secret"]`}
	for _, l := range strings.Split(readFile(t, logPath), "\n") {
		for module, fields := range want {
			if strings.Contains(l, `"level":"warn"`) && strings.Contains(l, module+": a secret is written as it is") {
				if !strings.Contains(l, fields) || strings.Contains(l, pushKey) || strings.Contains(l, testSecret) {
					t.Errorf("the warning does not name %s alone: %s", fields, l)
				}
				delete(want, module)
			}
		}
	}
	if len(want) > 0 {
		t.Errorf("no WARN from %v", want)
	}
}

// TestAccessLogFilterKeepsTheAssertionOut: a forward-auth site's verify
// answers carry the signed assertion in a response header, which Caddy's
// access log prints; the filter SECURITY.md gives for the access log
// removes it.
func TestAccessLogFilterKeepsTheAssertionOut(t *testing.T) {
	for _, filtered := range []bool{false, true} {
		logPath := filepath.Join(t.TempDir(), "access.log")
		block := "\tlog {\n\t\toutput file " + logPath + "\n\t}\n"
		if filtered {
			block = securityLogFilter(t, "resp_headers>X-Wx-Assertion delete", logPath)
		}
		loadCaddy(t, globalOptions("")+"\n"+siteBase+" {\n"+block+"\twechat_auth {\n\t\tsandbox\n\t\tassertion\n\t}\n\trespond ok\n}\n")
		resp, err := http.PostForm(siteBase+"/wx/login", url.Values{"code": {"log-assert"}})
		if err != nil {
			t.Fatal(err)
		}
		var lr loginResult
		json.NewDecoder(resp.Body).Decode(&lr)
		resp.Body.Close()
		r := get(t, siteBase+"/wx/verify", lr.Token)
		wantStatus(t, r, http.StatusOK)
		sent := r.Header.Get("X-Wx-Assertion")
		if sent == "" {
			t.Fatal("the verify answer carries no assertion")
		}
		stopFileLog(t)
		text := readFile(t, logPath)
		if !strings.Contains(text, "/wx/verify") {
			t.Fatalf("the access log has no verify line:\n%s", text)
		}
		if got := strings.Contains(text, sent); got == filtered {
			t.Errorf("filtered=%v: the access log holds the assertion: %v", filtered, got)
		}
	}
}
