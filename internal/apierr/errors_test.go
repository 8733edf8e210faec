package apierr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddy-wechat/wechatauth/wechat"
)

func TestFromWeChatMapsEveryErrcode(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		status     int
		code       string
		errcode    int  // wechat_errcode in the answer
		retryAfter bool // Retry-After must be set
	}{
		{"40029 invalid code", &wechat.Error{API: wechat.APICode2Session, Code: 40029}, 401, "invalid_code", 40029, false},
		{"40163 code used", &wechat.Error{Code: 40163}, 401, "invalid_code", 40163, false},
		{"40226 user blocked", &wechat.Error{Code: 40226}, 403, "user_blocked", 40226, false},
		{"45011 rate limited", &wechat.Error{Code: 45011}, 429, "rate_limited", 45011, true},
		{"-1 system error", &wechat.Error{Code: -1}, 503, "wechat_unavailable", -1, true},
		{"40013 invalid appid", &wechat.Error{Code: 40013}, 500, "config_error", 40013, false},
		{"40125 invalid secret", &wechat.Error{Code: 40125}, 500, "config_error", 40125, false},
		{"41002 appid missing", &wechat.Error{Code: 41002}, 500, "config_error", 41002, false},
		{"41004 secret missing", &wechat.Error{Code: 41004}, 500, "config_error", 41004, false},
		{"40164 IP not whitelisted", &wechat.Error{Code: 40164}, 500, "config_error", 40164, false},
		{"wrapped errcode", fmt.Errorf("login: %w", &wechat.Error{Code: 40163}), 401, "invalid_code", 40163, false},
		{"transport error", &wechat.UnavailableError{API: wechat.APICode2Session, Err: errors.New("connection refused")}, 503, "wechat_unavailable", 0, true},
		{"timeout", &wechat.UnavailableError{API: wechat.APICode2Session, Err: context.DeadlineExceeded}, 503, "wechat_unavailable", 0, true},
		{"bare deadline", context.DeadlineExceeded, 503, "wechat_unavailable", 0, true},
		{"unknown error", errors.New("something"), 503, "wechat_unavailable", 0, true},
		{"another app's phone number", wechat.ErrForeignWatermark, 403, "watermark_mismatch", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ae := FromWeChat(tt.err)
			if ae.status != tt.status || ae.code != tt.code || ae.wechatErrcode != tt.errcode {
				t.Fatalf("answer %d %s errcode %d, want %d %s errcode %d", ae.status, ae.code, ae.wechatErrcode, tt.status, tt.code, tt.errcode)
			}
			w := httptest.NewRecorder()
			Write(w, httptest.NewRequest(http.MethodPost, "/wx/login", nil), ae)
			if got := w.Header().Get("Retry-After"); (got != "") != tt.retryAfter {
				t.Fatalf("Retry-After %q, want set: %v", got, tt.retryAfter)
			}
			body := decodeError(t, w)
			if body.Error != tt.code {
				t.Fatalf("body error %q, want %q", body.Error, tt.code)
			}
			if body.WeChatErrcode != tt.errcode {
				t.Fatalf("body wechat_errcode %d, want %d", body.WeChatErrcode, tt.errcode)
			}
		})
	}
}

func TestFromWeChatDoesNotChangeTheSharedAnswers(t *testing.T) {
	FromWeChat(&wechat.Error{Code: 40163})
	if InvalidCode.wechatErrcode != 0 {
		t.Fatal("FromWeChat wrote the errcode into the shared InvalidCode")
	}
}

type errorBody struct {
	Error         string `json:"error"`
	Message       string `json:"message"`
	WeChatErrcode int    `json:"wechat_errcode"`
}

func decodeError(t *testing.T, w *httptest.ResponseRecorder) errorBody {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q", ct)
	}
	var raw map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
		t.Fatalf("body %q is not JSON: %v", w.Body, err)
	}
	for k := range raw {
		if k != "error" && k != "message" && k != "wechat_errcode" {
			t.Errorf("unexpected field %q in %s", k, w.Body)
		}
	}
	if _, ok := raw["wechat_errcode"]; ok && raw["wechat_errcode"] == float64(0) {
		t.Errorf("wechat_errcode 0 present in %s", w.Body)
	}
	var b errorBody
	json.Unmarshal(w.Body.Bytes(), &b)
	if b.Message == "" {
		t.Errorf("no message for a person in %s", w.Body)
	}
	return b
}

func TestWriteErrorSetsChallengeRetryAfterAndAllow(t *testing.T) {
	tests := []struct {
		name       string
		e          *Error
		status     int
		challenge  string // WWW-Authenticate; "" means absent
		retryAfter string
		allow      string
	}{
		{"no token", Unauthorized, 401, `Bearer realm="wechat_auth"`, "", ""},
		{"bad token", InvalidToken, 401, `Bearer realm="wechat_auth", error="invalid_token"`, "", ""},
		{"session expired", SessionExpired, 401, `Bearer realm="wechat_auth", error="invalid_token"`, "", ""},
		{"refused login code", InvalidCode, 401, `Bearer realm="wechat_auth"`, "", ""},
		{"refused phone code, token sent", InvalidCode, 401, `Bearer realm="wechat_auth", error="invalid_token"`, "", ""},
		{"bad request", InvalidRequest, 400, "", "", ""},
		{"decrypt failed", DecryptFailed, 400, "", "", ""},
		{"signature mismatch", SignatureMismatch, 400, "", "", ""},
		{"watermark mismatch", WatermarkMismatch, 403, "", "", ""},
		{"user blocked", UserBlocked, 403, "", "", ""},
		{"rate limited", RateLimited, 429, "", "60", ""},
		{"WeChat unavailable", WeChatUnavailable, 503, "", "5", ""},
		{"store unavailable", StoreUnavailable, 503, "", "2", ""},
		{"config error", Config, 500, "", "", ""},
		{"too large", PayloadTooLarge, 413, "", "", ""},
		{"wrong method", Method, 405, "", "", "POST"},
		{"wrong method, GET route", Method.Allowing([]string{"GET", "HEAD"}), 405, "", "", "GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodPost, "/wx/phone", nil)
			if strings.Contains(tt.name, "token sent") {
				r.Header.Set("Authorization", "Bearer x.y.z")
			}
			Write(w, r, tt.e)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tt.challenge)
			}
			if got := w.Header().Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tt.retryAfter)
			}
			if got := w.Header().Get("Allow"); got != tt.allow {
				t.Errorf("Allow %q, want %q", got, tt.allow)
			}
			if got := w.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", got)
			}
			if b := decodeError(t, w); b.Error != tt.e.code {
				t.Errorf("error %q, want %q", b.Error, tt.e.code)
			}
		})
	}
}

func TestWriteErrorWithMessageKeepsTheChallenge(t *testing.T) {
	// A copy made by withMessage is not Unauthorized itself.
	w := httptest.NewRecorder()
	Write(w, httptest.NewRequest(http.MethodGet, "/", nil), InvalidToken.WithMessage("The token has been revoked."))
	if got := w.Header().Get("WWW-Authenticate"); got != `Bearer realm="wechat_auth", error="invalid_token"` {
		t.Fatalf("WWW-Authenticate %q", got)
	}
	w = httptest.NewRecorder()
	Write(w, httptest.NewRequest(http.MethodGet, "/", nil), Unauthorized.WithMessage("Log in first."))
	if got := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, `Bearer realm="wechat_auth"`) {
		t.Fatalf("WWW-Authenticate %q", got)
	}
}

func TestWriteErrorNeverLeaksWeChatOrGoErrorText(t *testing.T) {
	const leak = "S3CRET-js_code=C0DE-dial tcp 10.0.0.1:443"
	for _, err := range []error{
		&wechat.Error{API: wechat.APICode2Session, Code: 40029, Message: "invalid code " + leak + ", rid: 1"},
		&wechat.Error{Code: 40125, Message: leak},
		&wechat.Error{Code: 12345, Message: leak},
		&wechat.UnavailableError{API: wechat.APICode2Session, Err: errors.New(leak)},
		fmt.Errorf("wrapped: %w", errors.New(leak)),
	} {
		w := httptest.NewRecorder()
		Write(w, httptest.NewRequest(http.MethodPost, "/wx/login", nil), FromWeChat(err))
		for name, vals := range w.Header() {
			if strings.Contains(strings.Join(vals, " "), "S3CRET") {
				t.Errorf("header %s leaks %q", name, vals)
			}
		}
		for _, part := range []string{"S3CRET", "C0DE", "dial tcp", "rid:"} {
			if strings.Contains(w.Body.String(), part) {
				t.Errorf("answer to %T leaks %q: %s", err, part, w.Body)
			}
		}
	}
}

func TestWriteJSONAnswersAreNeverCached(t *testing.T) {
	w := httptest.NewRecorder()
	WriteJSON(w, http.StatusOK, map[string]string{"token": "x"})
	if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("Content-Length") != fmt.Sprint(w.Body.Len()) {
		t.Fatalf("headers %v", w.Header())
	}
	w = httptest.NewRecorder()
	WriteJSON(w, http.StatusOK, func() {}) // cannot be marshalled
	if w.Code != http.StatusInternalServerError || !json.Valid(w.Body.Bytes()) {
		t.Fatalf("unmarshallable value: %d %s", w.Code, w.Body)
	}
}
