package caddytest

// Acceptance of issue 14, audit log: with the README's global `log audit`
// block, the file gets one entry per login, refresh, logout, decrypt,
// phone, user_revoke, ban and unban (the admin API's too, and a route's
// 405 or 413), each with
// event, result, appid, openid, sid when known and remote_ip; no secret,
// code, token, ciphertext or phone number; and nothing for proxied
// requests.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

func auditEntries(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line is not JSON: %q", sc.Text())
		}
		out = append(out, e)
	}
	return out
}

func TestAuditLogFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	st := startStack(t, stackConfig{Global: fmt.Sprintf("\tlog audit {\n\t\toutput file %s\n\t\tinclude http.handlers.wechat_auth.audit\n\t}", path)})
	v := wechattest.UserInfoVector
	rdsVectorCode(st.WeChat, "audit-login-code")
	lr := st.login(t, "audit-login-code")
	tok := rotRefresh(t, st.Base, lr.Token)
	wantStatus(t, postJSON(t, st.Base+"/wx/userinfo", tok, map[string]string{"encryptedData": v.EncryptedData, "iv": v.IV}), http.StatusOK)
	phone := testPhoneOf("13912345678")
	st.WeChat.AddPhoneCode("audit-phone-code", phone)
	wantStatus(t, postJSON(t, st.Base+"/wx/phone", tok, map[string]string{"code": "audit-phone-code"}), http.StatusOK)
	wantError(t, postJSON(t, st.Base+"/wx/login", "", map[string]string{"code": "unknown-code-x"}), http.StatusUnauthorized, "invalid_code")
	// Refused before the route acts, still audited as that route.
	wantStatus(t, get(t, st.Base+"/wx/login", ""), http.StatusMethodNotAllowed)
	wantStatus(t, send(t, http.MethodPost, st.Base+"/wx/refresh", bearer(tok), strings.Repeat("x", 65*1024)), http.StatusRequestEntityTooLarge)

	before := len(auditEntries(t, path))
	for range 10 {
		wantStatus(t, get(t, st.Base+"/api/orders", tok), http.StatusOK)
	}
	wantStatus(t, get(t, st.Base+"/api/orders", "not-a-token"), http.StatusUnauthorized)
	if n := len(auditEntries(t, path)); n != before {
		t.Errorf("11 proxied requests added %d audit entries, want none", n-before)
	}
	wantStatus(t, send(t, http.MethodPost, st.Base+"/wx/logout", bearer(tok), ""), http.StatusNoContent)

	h := http.Header{"Content-Type": {"application/json"}}
	user := `{"appid":"` + testAppID + `","openid":"` + v.OpenID + `"}`
	wantStatus(t, send(t, http.MethodPost, adminURL+"/wechat_auth/users/revoke", h, user), http.StatusOK)
	wantStatus(t, send(t, http.MethodPost, adminURL+"/wechat_auth/users/ban", h, `{"appid":"`+testAppID+`","openid":"`+v.OpenID+`","reason":"test"}`), http.StatusOK)
	wantStatus(t, send(t, http.MethodDelete, adminURL+"/wechat_auth/users/ban", h, user), http.StatusOK)
	wantStatus(t, send(t, http.MethodPost, adminURL+"/wechat_auth/users/ban", h, `{"appid":"`+testAppID+`"}`), http.StatusBadRequest)
	// A malformed appid is refused as such, not as an app nobody serves,
	// and stays out of the audit log.
	wantError(t, send(t, http.MethodPost, adminURL+"/wechat_auth/users/ban", h, `{"appid":"wx\u0000../x","openid":"oMal"}`), http.StatusBadRequest, "invalid_request")
	// Another method: 405 naming those the route takes.
	r := send(t, http.MethodPut, adminURL+"/wechat_auth/users/ban", h, user)
	wantStatus(t, r, http.StatusMethodNotAllowed)
	if got := r.Header.Get("Allow"); got != "POST, DELETE" {
		t.Errorf("405 of /wechat_auth/users/ban: Allow %q, want \"POST, DELETE\"", got)
	}

	entries := auditEntries(t, path)
	var events []string
	for _, e := range entries {
		if e["logger"] != "http.handlers.wechat_auth.audit" || e["level"] != "info" {
			t.Errorf("entry from logger %v at %v", e["logger"], e["level"])
		}
		events = append(events, fmt.Sprintf("%v:%v", e["event"], e["result"]))
		if e["remote_ip"] == nil || e["remote_ip"] == "" {
			t.Errorf("entry without remote_ip: %v", e)
		}
		if a, _ := e["appid"].(string); strings.ContainsAny(a, "\x00./") {
			t.Errorf("the audit log holds a malformed appid: %v", e)
		}
		if e["result"] != "invalid_request" { // those name no user the module knows of
			if e["appid"] != testAppID {
				t.Errorf("entry without its appid: %v", e)
			}
		}
	}
	want := []string{"login:ok", "refresh:ok", "decrypt:ok", "phone:ok", "login:invalid_code",
		"login:invalid_request", "refresh:payload_too_large", "logout:ok",
		"user_revoke:ok", "ban:ok", "unban:ok", "ban:invalid_request", "ban:invalid_request", "ban:invalid_request"}
	if strings.Join(events, " ") != strings.Join(want, " ") {
		t.Errorf("audit events\n%v\nwant\n%v", events, want)
	}
	for i, e := range entries[:4] {
		if e["openid"] != v.OpenID || e["sid"] == nil {
			t.Errorf("entry %d (%v) lacks the user's openid or sid", i, e["event"])
		}
	}
	text := readFile(t, path)
	for name, secret := range map[string]string{
		"app secret": testSecret, "signing key": testSigningKey, "token": lr.Token, "refreshed token": tok,
		"login code": "audit-login-code", "phone code": "audit-phone-code", "session_key": v.SessionKey,
		"encryptedData": v.EncryptedData[:40], "iv": v.IV, "phone number": "13912345678",
	} {
		if strings.Contains(text, secret) {
			t.Errorf("the audit log holds the %s", name)
		}
	}
}

// An app a site serves can be managed by the admin API whatever the form
// of its appid (the config takes any); a malformed appid no site serves
// is refused as malformed.
func TestAdminTakesAServedAppIDOfAnyForm(t *testing.T) {
	loadCaddy(t, globalOptions("")+"\nhttp://localhost:9080 {\n\twechat_auth {\n\t\tsandbox\n\t\tapp_id demo.app\n\t}\n\trespond ok\n}\n")
	h := http.Header{"Content-Type": {"application/json"}}
	wantStatus(t, send(t, http.MethodPost, adminURL+"/wechat_auth/users/ban", h, `{"appid":"demo.app","openid":"oDemo"}`), http.StatusOK)
	wantStatus(t, send(t, http.MethodDelete, adminURL+"/wechat_auth/users/ban", h, `{"appid":"demo.app","openid":"oDemo"}`), http.StatusOK)
	wantError(t, send(t, http.MethodPost, adminURL+"/wechat_auth/users/ban", h, `{"appid":"other.app","openid":"oDemo"}`), http.StatusBadRequest, "invalid_request")
}
