package caddytest

// Acceptance points covered here (issue 2, error answers):
//   - WeChat 40163 and 40029: 401 invalid_code with wechat_errcode; 40226:
//     403 user_blocked; 45011: 429 rate_limited with Retry-After; -1, an HTML
//     502 and a non-JSON 200: 503 wechat_unavailable with Retry-After;
//     40125 (and the other operator errors): 500 config_error. WeChat's own
//     errmsg never reaches the client, and a code is sent to WeChat once
//     (never retried after a failure).
//   - No code: 400 invalid_request; a 200 KB body: 413 payload_too_large
//     (with and without Content-Length); a malformed body: 400; GET on a
//     route: 405 with Allow: POST.

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

func TestLoginMapsWeChatErrors(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(s *wechattest.Server, code string)
		status     int
		code       string
		errcode    int // wechat_errcode expected; 0: none, WeChat gave no errcode
		retryAfter bool
	}{
		{"40163 code used", errcodeSetup(40163), 401, "invalid_code", 40163, false},
		{"40029 invalid code", errcodeSetup(40029), 401, "invalid_code", 40029, false},
		{"40226 user blocked", errcodeSetup(40226), 403, "user_blocked", 40226, false},
		{"45011 rate limited", errcodeSetup(45011), 429, "rate_limited", 45011, true},
		{"-1 system error", errcodeSetup(-1), 503, "wechat_unavailable", -1, true},
		{"HTML 502 from a gateway", func(s *wechattest.Server, code string) {
			s.FailNextHTTP(wechattest.PathCode2Session, http.StatusBadGateway, "<html><body><h1>502 Bad Gateway</h1></body></html>")
		}, 503, "wechat_unavailable", 0, true},
		{"non-JSON 200", func(s *wechattest.Server, code string) {
			s.FailNextHTTP(wechattest.PathCode2Session, http.StatusOK, "<html>maintenance</html>")
		}, 503, "wechat_unavailable", 0, true},
		{"40125 invalid app secret", errcodeSetup(40125), 500, "config_error", 40125, false},
		{"40013 invalid appid", errcodeSetup(40013), 500, "config_error", 40013, false},
		{"40164 IP not whitelisted", errcodeSetup(40164), 500, "config_error", 40164, false},
	}
	st := startStack(t, stackConfig{})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code := "failing-code-" + strconv.Itoa(i)
			st.addUser(code)
			tt.setup(st.WeChat, code)
			before := st.WeChat.Calls(wechattest.PathCode2Session)

			r := postJSON(t, st.Base+"/wx/login", "", map[string]string{"code": code})
			body := wantError(t, r, tt.status, tt.code)
			got, has := body["wechat_errcode"]
			switch {
			case tt.errcode != 0 && got != float64(tt.errcode):
				t.Errorf("wechat_errcode %v, want %d", got, tt.errcode)
			case tt.errcode == 0 && has:
				t.Errorf("wechat_errcode %v, though WeChat answered with none", got)
			}
			ra := r.Header.Get("Retry-After")
			if n, err := strconv.Atoi(ra); tt.retryAfter && (err != nil || n <= 0) {
				t.Errorf("Retry-After %q, want a positive number of seconds", ra)
			}
			if strings.Contains(string(r.Body), "rid:") || strings.Contains(string(r.Body), "Bad Gateway") {
				t.Errorf("WeChat's own text reached the client: %s", r.Body)
			}
			if n := st.WeChat.Calls(wechattest.PathCode2Session) - before; n != 1 {
				t.Errorf("%d jscode2session calls for one login, want 1 (a code is never retried)", n)
			}
		})
	}
}

// errcodeSetup makes the login code answer errcode.
func errcodeSetup(errcode int) func(*wechattest.Server, string) {
	return func(s *wechattest.Server, code string) { s.AddErrorCode(testAppID, code, errcode) }
}

func TestMalformedLoginRequests(t *testing.T) {
	st := startStack(t, stackConfig{})
	big := strings.Repeat("A", 200<<10)
	tests := []struct {
		name        string
		method      string
		contentType string
		body        string
		chunked     bool
		status      int
		code        string
	}{
		{"no code, JSON", "POST", "application/json", `{}`, false, 400, "invalid_request"},
		{"no code, form", "POST", "application/x-www-form-urlencoded", `appid=wx1`, false, 400, "invalid_request"},
		{"empty body", "POST", "", "", false, 400, "invalid_request"},
		{"code not a string", "POST", "application/json", `{"code":12345}`, false, 400, "invalid_request"},
		{"broken JSON", "POST", "application/json", `{"code":"abc"`, false, 400, "invalid_request"},
		{"JSON array", "POST", "application/json", `["code"]`, false, 400, "invalid_request"},
		{"code with control characters", "POST", "application/json", `{"code":"a\u0000b"}`, false, 400, "invalid_request"},
		{"XML", "POST", "application/xml", `<code>abc</code>`, false, 400, "invalid_request"},
		{"200 KB body", "POST", "application/json", `{"code":"` + big + `"}`, false, 413, "payload_too_large"},
		{"200 KB chunked body", "POST", "application/json", `{"code":"` + big + `"}`, true, 413, "payload_too_large"},
		{"GET", "GET", "", "", false, 405, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.contentType != "" {
				h.Set("Content-Type", tt.contentType)
			}
			var r *reply
			if tt.chunked {
				r = sendChunked(t, st.Base+"/wx/login", h, tt.body)
			} else {
				r = send(t, tt.method, st.Base+"/wx/login", h, tt.body)
			}
			wantError(t, r, tt.status, tt.code)
			if tt.status == http.StatusMethodNotAllowed && r.Header.Get("Allow") != "POST" {
				t.Errorf("Allow %q, want POST", r.Header.Get("Allow"))
			}
		})
	}
	if n := st.WeChat.Calls(wechattest.PathCode2Session); n != 0 {
		t.Errorf("%d malformed logins reached WeChat", n)
	}
	// Caddy still serves after them.
	st.addUser("after")
	st.login(t, "after")
}

// The 64 KiB body limit holds on refresh and logout too, though they
// read no fields: a larger body is refused with 413, sent with a length or
// chunked, and the route does nothing (the session stays logged in).
func TestRefreshAndLogoutRefuseBodiesOver64KiB(t *testing.T) {
	st := startStack(t, stackConfig{})
	st.addUser("big-body")
	lr := st.login(t, "big-body")
	big := strings.Repeat("A", 70<<10)
	for _, path := range []string{"/wx/refresh", "/wx/logout"} {
		r := post(t, st.Base+path, lr.Token, "application/x-www-form-urlencoded", "pad="+big)
		wantError(t, r, http.StatusRequestEntityTooLarge, "payload_too_large")
		r = sendChunked(t, st.Base+path, bearer(lr.Token), "pad="+big)
		wantError(t, r, http.StatusRequestEntityTooLarge, "payload_too_large")
	}
	wantStatus(t, get(t, st.Base+"/api/me", lr.Token), http.StatusOK)
	// At the limit, both still work.
	atLimit := "pad=" + strings.Repeat("A", 64<<10-len("pad="))
	wantStatus(t, post(t, st.Base+"/wx/refresh", lr.Token, "application/x-www-form-urlencoded", atLimit), http.StatusOK)
	wantStatus(t, post(t, st.Base+"/wx/logout", lr.Token, "application/x-www-form-urlencoded", atLimit), http.StatusNoContent)
	wantError(t, get(t, st.Base+"/api/me", lr.Token), http.StatusUnauthorized, "invalid_token")
}

// A login body that names a field twice, or only in another case, is
// refused before anything reaches WeChat: what wechat_auth reads and what
// an upstream would read must never differ.
func TestLoginRefusesRepeatedOrMiscasedFields(t *testing.T) {
	st := startStack(t, stackConfig{})
	st.addUser("A")
	st.addUser("B")
	tests := []struct {
		name, contentType, body string
	}{
		{"JSON, code twice", "application/json", `{"code":"A","code":"B"}`},
		{"JSON, code in capitals", "application/json", `{"CODE":"B"}`},
		{"JSON, code in title case", "application/json", `{"Code":"B"}`},
		{"form, code twice", "application/x-www-form-urlencoded", "code=A&code=B"},
		{"form, appid twice", "application/x-www-form-urlencoded", "code=A&appid=" + testAppID + "&appid=wxother"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, post(t, st.Base+"/wx/login", "", tt.contentType, tt.body), http.StatusBadRequest, "invalid_request")
		})
	}
	if n := st.WeChat.Calls(wechattest.PathCode2Session); n != 0 {
		t.Errorf("%d refused logins reached WeChat", n)
	}
	st.login(t, "A") // the codes were never spent
	st.login(t, "B")
}

// A token sent where it is never read (?token=, ?access_token=, a bare JWT
// or another scheme in Authorization) is answered 401 unauthorized with a
// message that says to send "Authorization: Bearer <token>"; a request with
// no token at all is told to log in. Neither reaches the upstream.
func TestMisplacedTokenIsToldHowToSendIt(t *testing.T) {
	st := startStack(t, stackConfig{})
	st.addUser("misplaced")
	lr := st.login(t, "misplaced")
	tests := []struct {
		name   string
		path   string
		header http.Header
		howTo  bool
	}{
		{"?token=", "/api/orders?token=" + lr.Token, nil, true},
		{"?access_token=", "/api/orders?access_token=" + lr.Token, nil, true},
		{"bare JWT", "/api/orders", http.Header{"Authorization": {lr.Token}}, true},
		{"Token scheme", "/api/orders", http.Header{"Authorization": {"Token " + lr.Token}}, true},
		{"JWT scheme", "/api/orders", http.Header{"Authorization": {"JWT " + lr.Token}}, true},
		{"no token", "/api/orders", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := st.Upstream.Count()
			body := wantError(t, send(t, http.MethodGet, st.Base+tt.path, tt.header, ""), http.StatusUnauthorized, "unauthorized")
			msg, _ := body["message"].(string)
			if got := strings.Contains(msg, "Authorization: Bearer <token>"); got != tt.howTo {
				t.Errorf("message %q names the Bearer header: %v, want %v", msg, got, tt.howTo)
			}
			if strings.Contains(msg, lr.Token) {
				t.Error("the message echoes the token")
			}
			if st.Upstream.Count() != before {
				t.Error("the request reached the upstream")
			}
		})
	}
}
