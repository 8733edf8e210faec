package wechatauth

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/caddy-wechat/wechatauth/internal/credential"
	"github.com/caddy-wechat/wechatauth/wechat"
)

// apiError is an error answer of the routes: a fixed code, a status and a
// sentence for a person. It never carries Go error text.
type apiError struct {
	status        int
	code          string
	message       string
	wechatErrcode int    // WeChat's errcode when WeChat answered with one
	retryAfter    int    // seconds; sets Retry-After when > 0
	allow         string // the Allow header of a 405
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

// with returns a copy of e carrying WeChat's errcode.
func (e *apiError) with(errcode int) *apiError {
	c := *e
	c.wechatErrcode = errcode
	return &c
}

// allowing returns a copy of e, a 405, naming the methods a route answers.
func (e *apiError) allowing(methods []string) *apiError {
	c := *e
	c.allow = strings.Join(methods, ", ")
	c.message = "This route only accepts " + c.allow + "."
	return &c
}

// withMessage returns a copy of e with a more precise message.
func (e *apiError) withMessage(msg string) *apiError {
	c := *e
	c.message = msg
	return &c
}

var (
	errInvalidRequest = &apiError{status: http.StatusBadRequest, code: "invalid_request",
		message: "The request is missing a field or has a malformed one."}
	errMethod = &apiError{status: http.StatusMethodNotAllowed, code: "invalid_request",
		message: "This route only accepts POST.", allow: http.MethodPost}
	errInvalidCode = &apiError{status: http.StatusUnauthorized, code: "invalid_code",
		message: "WeChat refused the login code (expired or already used): call wx.login again."}
	errUnauthorized = &apiError{status: http.StatusUnauthorized, code: "unauthorized",
		message: "This request needs a Bearer token: log in first."}
	// errTokenMisplaced answers a request that carried a token where it is
	// never read: in the query string or under another scheme.
	errTokenMisplaced = &apiError{status: http.StatusUnauthorized, code: "unauthorized",
		message: "The token was not sent as a Bearer token: send it in the header \"Authorization: Bearer <token>\" (never in the query string)."}
	errInvalidToken = &apiError{status: http.StatusUnauthorized, code: "invalid_token",
		message: "The token is invalid, expired or revoked: log in again."}
	errSessionExpired = &apiError{status: http.StatusUnauthorized, code: "session_expired",
		message: "The WeChat session has expired: log in again."}
	errDecryptFailed = &apiError{status: http.StatusBadRequest, code: "decrypt_failed",
		message: "The data could not be decrypted with this session's key: call wx.login again, then fetch the data again."}
	errSignatureMismatch = &apiError{status: http.StatusBadRequest, code: "signature_mismatch",
		message: "The rawData signature does not match."}
	errWatermarkMismatch = &apiError{status: http.StatusForbidden, code: "watermark_mismatch",
		message: "The data belongs to another app or another user."}
	errUserBlocked = &apiError{status: http.StatusForbidden, code: "user_blocked",
		message: "WeChat has blocked this user's login."}
	errRateLimited = &apiError{status: http.StatusTooManyRequests, code: "rate_limited",
		message: "Too many logins for this user: try again in a minute.", retryAfter: 60}
	errWeChatUnavailable = &apiError{status: http.StatusServiceUnavailable, code: "wechat_unavailable",
		message: "WeChat is not answering right now: try again shortly.", retryAfter: 5}
	errStoreUnavailable = &apiError{status: http.StatusServiceUnavailable, code: "store_unavailable",
		message: "The session store is not answering right now: try again shortly.", retryAfter: 2}
	errConfig = &apiError{status: http.StatusInternalServerError, code: "config_error",
		message: "The server's WeChat configuration is wrong; the operator has been told."}
	errPayloadTooLarge = &apiError{status: http.StatusRequestEntityTooLarge, code: "payload_too_large",
		message: "The request body is larger than 64 KiB."}

	// Answers of the wechat_api gateway.
	errAPINotAllowed = &apiError{status: http.StatusForbidden, code: "api_not_allowed",
		message: "This WeChat API is not in the gateway's allow list (and the token endpoints never are)."}
	errNoLiveSession = &apiError{status: http.StatusNotFound, code: "no_session",
		message: "This user has no live session: the user must log in first."}
	errGatewayTooLarge = &apiError{status: http.StatusRequestEntityTooLarge, code: "payload_too_large",
		message: "The request body is larger than the gateway's max_body."}
)

// configErrcodes are WeChat errcodes only the operator can fix, with the
// fix to log.
var configErrcodes = map[int]string{
	40013: "WeChat says the appid is invalid: check app_id",
	40125: "WeChat says the app secret is invalid: check app_secret (reset it in the mini program admin console if needed)",
	41002: "WeChat says the appid is missing: check app_id",
	41004: "WeChat says the app secret is missing: check app_secret",
	40164: "WeChat refuses this server's IP address: add it to the IP whitelist in the mini program admin console",
	40002: "WeChat refused the grant type: report this as a bug in wechat_auth",
}

// fromWeChat maps an error of the wechat package to an answer, by the kind
// of failure the wechat package says it is. WeChat's own text never reaches
// the client.
func fromWeChat(err error) *apiError {
	var we *wechat.Error
	if !errors.As(err, &we) {
		return errWeChatUnavailable
	}
	switch we.Kind() {
	case wechat.KindInvalidCode:
		return errInvalidCode.with(we.Code)
	case wechat.KindBlocked:
		return errUserBlocked.with(we.Code)
	case wechat.KindRateLimited:
		return errRateLimited.with(we.Code)
	case wechat.KindConfig:
		return errConfig.with(we.Code)
	}
	// WeChat busy, a token it refused twice, or an errcode it has not
	// documented for this call: nothing the client did, and nothing it can
	// fix by retrying at once.
	return errWeChatUnavailable.with(we.Code)
}

// writeError answers r with e as JSON. It alone decides the challenge of a
// 401: every 401 to a request that carried a Bearer token says
// error="invalid_token", even when what failed is a phone code, not the
// token (the JSON error code tells which); a 401 to a request without one
// (a missing token, a login's refused code) names no error.
func writeError(w http.ResponseWriter, r *http.Request, e *apiError) {
	h := w.Header()
	if e.status == http.StatusUnauthorized {
		_, tokenSent := credential.Token(r.Header.Get("Authorization"))
		if tokenSent || e.code == errInvalidToken.code || e.code == errSessionExpired.code {
			h.Set("WWW-Authenticate", `Bearer realm="wechat_auth", error="invalid_token"`)
		} else {
			h.Set("WWW-Authenticate", `Bearer realm="wechat_auth"`)
		}
	}
	if e.allow != "" {
		h.Set("Allow", e.allow)
	}
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	body := struct {
		Error         string `json:"error"`
		Message       string `json:"message"`
		WeChatErrcode int    `json:"wechat_errcode,omitempty"`
	}{e.code, e.message, e.wechatErrcode}
	writeJSON(w, e.status, body)
}

// writeJSON answers with v as JSON. Answers of this module are never cached:
// they carry tokens and personal data.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal","message":"internal error"}`)
	}
	writeRawJSON(w, status, b)
}

func writeRawJSON(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}
