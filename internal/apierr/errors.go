// Package apierr is the catalogue of client errors the routes answer (a
// fixed code, a status, a sentence for a person, never Go error text), the
// writer of JSON answers (and of the same as a page, for a browser), and
// the bounded reading of request bodies.
package apierr

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/caddy-wechat/wechatauth/internal/credential"
	"github.com/caddy-wechat/wechatauth/wechat"
)

// Error is an error answer of the routes: a fixed code, a status and a
// sentence for a person. It never carries Go error text.
type Error struct {
	status        int
	code          string
	message       string
	wechatErrcode int    // WeChat's errcode when WeChat answered with one
	retryAfter    int    // seconds; sets Retry-After when > 0
	allow         string // the Allow header of a 405
}

func (e *Error) Error() string { return e.code + ": " + e.message }

// Code is the answer's fixed error code.
func (e *Error) Code() string { return e.code }

// Status is the answer's HTTP status.
func (e *Error) Status() int { return e.status }

// Message is the answer's sentence for a person.
func (e *Error) Message() string { return e.message }

// WeChatErrcode is WeChat's errcode when WeChat answered with one.
func (e *Error) WeChatErrcode() int { return e.wechatErrcode }

// With returns a copy of e carrying WeChat's errcode.
func (e *Error) With(errcode int) *Error {
	c := *e
	c.wechatErrcode = errcode
	return &c
}

// Allowing returns a copy of e, a 405, naming the methods a route answers.
func (e *Error) Allowing(methods []string) *Error {
	c := *e
	c.allow = strings.Join(methods, ", ")
	c.message = "This route only accepts " + c.allow + "."
	return &c
}

// WithMessage returns a copy of e with a more precise message.
func (e *Error) WithMessage(msg string) *Error {
	c := *e
	c.message = msg
	return &c
}

var (
	InvalidRequest = &Error{status: http.StatusBadRequest, code: "invalid_request",
		message: "The request is missing a field or has a malformed one."}
	Method = &Error{status: http.StatusMethodNotAllowed, code: "invalid_request",
		message: "This route only accepts POST.", allow: http.MethodPost}
	InvalidCode = &Error{status: http.StatusUnauthorized, code: "invalid_code",
		message: "WeChat refused the login code (expired or already used): call wx.login again."}
	Unauthorized = &Error{status: http.StatusUnauthorized, code: "unauthorized",
		message: "This request needs a Bearer token: log in first."}
	// TokenMisplaced answers a request that carried a token where it is
	// never read: in the query string or under another scheme.
	TokenMisplaced = &Error{status: http.StatusUnauthorized, code: "unauthorized",
		message: "The token was not sent as a Bearer token: send it in the header \"Authorization: Bearer <token>\" (never in the query string)."}
	InvalidToken = &Error{status: http.StatusUnauthorized, code: "invalid_token",
		message: "The token is invalid, expired or revoked: log in again."}
	SessionExpired = &Error{status: http.StatusUnauthorized, code: "session_expired",
		message: "The WeChat session has expired: log in again."}
	DecryptFailed = &Error{status: http.StatusBadRequest, code: "decrypt_failed",
		message: "The data could not be decrypted with this session's key: call wx.login again, then fetch the data again."}
	SignatureMismatch = &Error{status: http.StatusBadRequest, code: "signature_mismatch",
		message: "The rawData signature does not match."}
	WatermarkMismatch = &Error{status: http.StatusForbidden, code: "watermark_mismatch",
		message: "The data belongs to another app or another user."}
	UserBlocked = &Error{status: http.StatusForbidden, code: "user_blocked",
		message: "WeChat has blocked this user's login."}
	RateLimited = &Error{status: http.StatusTooManyRequests, code: "rate_limited",
		message: "WeChat's limit for this user is reached: try again in a minute.", retryAfter: 60}
	WeChatUnavailable = &Error{status: http.StatusServiceUnavailable, code: "wechat_unavailable",
		message: "WeChat is not answering right now: try again shortly.", retryAfter: 5}
	StoreUnavailable = &Error{status: http.StatusServiceUnavailable, code: "store_unavailable",
		message: "The session store is not answering right now: try again shortly.", retryAfter: 2}
	Config = &Error{status: http.StatusInternalServerError, code: "config_error",
		message: "The server's WeChat configuration is wrong; the operator has been told."}
	PayloadTooLarge = &Error{status: http.StatusRequestEntityTooLarge, code: "payload_too_large",
		message: "The request body is larger than 64 KiB."}

	// Answers of web login (cookie sessions).
	CSRFRefused = &Error{status: http.StatusForbidden, code: "csrf_refused",
		message: "This request changes data with the session cookie but comes from another site (its Origin or Referer is not this site's): send it from this site's own pages."}
	AccessDenied = &Error{status: http.StatusForbidden, code: "access_denied",
		message: "The WeChat authorization was declined: nobody is logged in."}
	SnapshotUser = &Error{status: http.StatusForbidden, code: "snapshot_user",
		message: "This page was opened as a WeChat snapshot (preview), which cannot log in: tap 使用完整服务 (use the full service) at the bottom of the screen, then log in."}

	// Answers of the wechat_api gateway.
	APINotAllowed = &Error{status: http.StatusForbidden, code: "api_not_allowed",
		message: "This WeChat API is not in the gateway's allow list (and the token endpoints never are)."}
	NoLiveSession = &Error{status: http.StatusNotFound, code: "no_session",
		message: "This user has no live session: the user must log in first."}
	GatewayTooLarge = &Error{status: http.StatusRequestEntityTooLarge, code: "payload_too_large",
		message: "The request body is larger than the gateway's max_body."}

	// Answers of the wechat_pay gateway.
	PayNotAllowed = &Error{status: http.StatusForbidden, code: "api_not_allowed",
		message: "This WeChat Pay API path is not in the gateway's allow list (and paths with '..', ';', encoded slashes or control characters never are)."}
	PaySignatureInvalid = &Error{status: http.StatusBadGateway, code: "pay_signature_invalid",
		message: "WeChat Pay's answer did not carry a valid signature, so it was not passed on: nothing in it can be trusted."}
	PayUnavailable = &Error{status: http.StatusServiceUnavailable, code: "wechat_unavailable",
		message: "WeChat Pay is not answering right now: try again shortly.", retryAfter: 5}
	// Answers of the event receivers (wechat_push). One refusal for every
	// failed check, so that no answer tells a forger which one failed.
	PushRefused = &Error{status: http.StatusForbidden, code: "push_refused",
		message: "The push failed its checks (signature, app, freshness or replay); nothing was delivered."}
	PushTooLarge = &Error{status: http.StatusRequestEntityTooLarge, code: "payload_too_large",
		message: "The request body is larger than 1 MiB."}
	// DeliveryUnavailable: the event was neither delivered nor queued (the
	// store does not answer), or another instance is delivering it now;
	// the sender retries.
	DeliveryUnavailable = &Error{status: http.StatusServiceUnavailable, code: "delivery_unavailable",
		message: "The event could not be delivered or queued right now; nothing was lost: send it again shortly.", retryAfter: 2}
)

// FromWeChat maps an error of the wechat package to an answer, by the kind
// of failure the wechat package says it is. WeChat's own text never reaches
// the client.
func FromWeChat(err error) *Error {
	if errors.Is(err, wechat.ErrForeignWatermark) {
		return WatermarkMismatch
	}
	var we *wechat.Error
	if !errors.As(err, &we) {
		return WeChatUnavailable
	}
	switch we.Kind() {
	case wechat.KindInvalidCode:
		return InvalidCode.With(we.Code)
	case wechat.KindBlocked:
		return UserBlocked.With(we.Code)
	case wechat.KindRateLimited:
		return RateLimited.With(we.Code)
	case wechat.KindConfig:
		return Config.With(we.Code)
	}
	// WeChat busy, a token it refused twice, or an errcode it has not
	// documented for this call: nothing the client did, and nothing it can
	// fix by retrying at once.
	return WeChatUnavailable.With(we.Code)
}

// Write answers r with e as JSON. It alone decides the challenge of a
// 401: every 401 to a request that carried a Bearer token says
// error="invalid_token", even when what failed is a phone code, not the
// token (the JSON error code tells which); a 401 to a request without one
// (a missing token, a login's refused code) names no error.
func Write(w http.ResponseWriter, r *http.Request, e *Error) {
	e.setHeaders(w, r)
	WriteRawJSON(w, e.status, e.body())
}

// setHeaders sets the headers an answer of e carries beside its body.
func (e *Error) setHeaders(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	if e.status == http.StatusUnauthorized {
		_, tokenSent := credential.Token(r.Header.Get("Authorization"))
		if tokenSent || e.code == InvalidToken.code || e.code == SessionExpired.code {
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
}

// body is e's JSON answer.
func (e *Error) body() []byte {
	b, _ := json.Marshal(struct {
		Error         string `json:"error"`
		Message       string `json:"message"`
		WeChatErrcode int    `json:"wechat_errcode,omitempty"`
	}{e.code, e.message, e.wechatErrcode})
	return b
}

// WriteJSON answers with v as JSON. Answers of this module are never cached:
// they carry tokens and personal data.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal","message":"internal error"}`)
	}
	WriteRawJSON(w, status, b)
}

func WriteRawJSON(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// Result is the result label of what a route or call returned: "ok", the
// error code answered, or "error" for an error that is not an answer. The
// audit log and the metrics label results with it.
func Result(err error) string {
	var ae *Error
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &ae):
		return ae.code
	default:
		return "error"
	}
}
