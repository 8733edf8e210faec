package apierr

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// MaxBody is the largest request body the routes accept.
const MaxBody = 64 << 10

// maxDiscard is the most of an unwanted body read before answering, as in
// net/http.
const maxDiscard = 256 << 10

// bodyReadTimeout bounds how long a client may take to send a body.
const bodyReadTimeout = 10 * time.Second

// Fields are the request fields the routes read.
type Fields struct {
	Code          string `json:"code"`
	AppID         string `json:"appid"`
	EncryptedData string `json:"encryptedData"`
	IV            string `json:"iv"`
	RawData       string `json:"rawData"`
	Signature     string `json:"signature"`
}

// ReadBody reads at most MaxBody bytes of the request body, giving the
// client bodyReadTimeout to send them.
func ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, *Error) {
	return ReadBodyUpTo(w, r, MaxBody, PayloadTooLarge)
}

// ReadBodyUpTo reads at most limit bytes of the body; a larger one is
// answered tooLarge. A body refused by its declared length is left unread:
// the caller answers it as any refusal, after Unwanted.
func ReadBodyUpTo(w http.ResponseWriter, r *http.Request, limit int64, tooLarge *Error) ([]byte, *Error) {
	if r.ContentLength > limit {
		return nil, tooLarge
	}
	defer BodyDeadline(w)()
	b, err := io.ReadAll(LimitBody(w, r, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge
		}
		return nil, InvalidRequest.WithMessage("The request body could not be read.")
	}
	return b, nil
}

// BodyDeadline gives the client bodyReadTimeout to send the body; the
// function it returns lifts the deadline again.
func BodyDeadline(w http.ResponseWriter) (lift func()) {
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(time.Now().Add(bodyReadTimeout)) != nil {
		return func() {}
	}
	return func() { rc.SetReadDeadline(time.Time{}) }
}

// DiscardBody reads and drops what is left of a body the answer did not
// need, before the handler returns. net/http does that after the handler,
// but not for a client that sent "Connection: close": it closes the
// connection with the body half sent, and the TCP reset loses the answer
// too. Past net/http's own allowance (256 KiB) the limit is hit, and the
// server then closes the connection gracefully after the answer. A body
// declared longer than that allowance is not read (see Unwanted).
func DiscardBody(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength <= maxDiscard {
		discard(w, r)
	}
}

// Unwanted prepares the answer to a request whose body the handler will
// not use, and returns what to run once the answer is written:
//
//	after := apierr.Unwanted(w, r)
//	apierr.Write(w, r, e)
//	after()
//
// A body of up to 256 KiB is read now, as DiscardBody does, and the
// connection stays open. Other bodies are not waited for. One whose
// client awaits "100 Continue": reading would send the 100, asking for a
// body the answer does not use. One declared longer than 256 KiB, or sent
// chunked past that: reading could not finish it, and a client that waits
// for the answer before sending it would get the answer only when the read
// timed out (net/http itself reads up to 256 KiB of an unread body before
// it sends the answer, for any body Caddy has wrapped, which is every
// body, unless the answer closes the connection). Over HTTP/1 such an
// answer closes the connection and goes out at once, without asking for
// the body, and what the client sends anyway is then read (see linger).
// HTTP/2 and 3 end a stream alone.
func Unwanted(w http.ResponseWriter, r *http.Request) (afterAnswer func()) {
	if r.ContentLength <= maxDiscard && !waitsForContinue(r) && discard(w, r) {
		return func() {}
	}
	return Ignored(w, r)
}

// discard reads and drops up to 256 KiB of what is left of r's body, and
// reports whether the body ended.
func discard(w http.ResponseWriter, r *http.Request) bool {
	if r.ContentLength == 0 {
		return true
	}
	defer BodyDeadline(w)()
	_, err := io.Copy(io.Discard, LimitBody(w, r, maxDiscard))
	return err == nil
}

// Ignored prepares the answer to a request whose body, if any, is not read
// before the answer, whatever its size: over HTTP/1 an answer to a request
// with a body closes the connection and goes out at once, and the
// function it returns then reads what the client still sends, so that the
// close is graceful (see linger).
func Ignored(w http.ResponseWriter, r *http.Request) (afterAnswer func()) {
	if r.ContentLength == 0 || r.ProtoMajor != 1 {
		return func() {}
	}
	w.Header().Set("Connection", "close")
	return func() { linger(w, r) }
}

// How long the server reads on after an answer that closes the connection
// (nginx's lingering close, with nginx's 30 s in all).
const (
	// lingerIdle is the wait for a body that has not started to come (its
	// client waits for "100 Continue", or declared a body it never sends).
	lingerIdle = 500 * time.Millisecond
	// lingerGap is the longest pause between reads of a body that comes.
	lingerGap = 2 * time.Second
	// lingerTime bounds the whole read.
	lingerTime = 30 * time.Second
)

// linger sends the answer written so far, then reads and drops what the
// client still sends of r's body, whatever its size, until it ends or
// stops coming (see lingerIdle, lingerGap, lingerTime). The client that
// uploads its whole body before it reads the answer (a photo posted with
// an expired token) then finds the answer and a graceful close: closed
// under a sender still sending, the connection would be reset, and the
// reset loses the answer. Once sent, the answer stops net/http from
// sending "100 Continue" when the body is read. An answer that cannot be
// sent before the handler returns is not held back for the read: one of
// unknown length, or one a handler before this one buffers.
func linger(w http.ResponseWriter, r *http.Request) {
	if w.Header().Get("Content-Length") == "" || buffered(w) {
		return
	}
	rc := http.NewResponseController(w)
	if rc.Flush() != nil {
		return
	}
	// Left expired: net/http would otherwise read on after the handler,
	// without a deadline, for a body under 256 KiB still unsent.
	defer rc.SetReadDeadline(time.Now())
	end := time.Now().Add(lingerTime)
	buf := make([]byte, 32<<10)
	wait := lingerIdle
	for {
		next := time.Now().Add(wait)
		if next.After(end) {
			next = end
		}
		if rc.SetReadDeadline(next) != nil {
			return
		}
		n, err := r.Body.Read(buf)
		if err != nil {
			return
		}
		if n > 0 {
			wait = lingerGap
		}
	}
}

// buffered reports whether a writer around w keeps the answer back until
// the handler returns: Caddy's response recorders that buffer (log_append
// of the response body, intercept, templates), on which Flush sends
// nothing. Reading the body then would delay the answer, and send
// "100 Continue" to a client waiting for it.
func buffered(w http.ResponseWriter) bool {
	for {
		if b, ok := w.(interface{ Buffered() bool }); ok && b.Buffered() {
			return true
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return false
		}
		w = u.Unwrap()
	}
}

// waitsForContinue reports whether the client sends r's body only after
// "100 Continue" (Expect: 100-continue): reading the body would send the
// 100, asking for a body the answer does not use, however small.
func waitsForContinue(r *http.Request) bool {
	return r.ContentLength != 0 && r.ProtoAtLeast(1, 1) &&
		strings.EqualFold(strings.TrimSpace(r.Header.Get("Expect")), "100-continue")
}

// Refuse writes e as the answer to a request whose body goes unused (see
// Unwanted).
func Refuse(w http.ResponseWriter, r *http.Request, e *Error) {
	after := Unwanted(w, r)
	Write(w, r, e)
	after()
}

// LimitBody is http.MaxBytesReader on net/http's own ResponseWriter, under
// Caddy's wrappers: only that one learns that the limit was hit, and then
// closes the connection gracefully after the answer instead of resetting
// it under a client still sending.
func LimitBody(w http.ResponseWriter, r *http.Request, n int64) io.ReadCloser {
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		w = u.Unwrap()
	}
	return http.MaxBytesReader(w, r.Body, n)
}

// ReadFields parses a JSON or application/x-www-form-urlencoded body.
func ReadFields(w http.ResponseWriter, r *http.Request) (*Fields, *Error) {
	body, aerr := ReadBody(w, r)
	if aerr != nil {
		return nil, aerr
	}
	return ParseFields(r.Header.Get("Content-Type"), body)
}

// ParseFields parses a body by its content type. A body with no usable
// content type is read as JSON when it looks like a JSON object and as a
// form otherwise, since mini programs send both. A form-typed body that is
// a JSON object is read as JSON: curl -d and some wx.request wrappers label
// JSON that way, and no form starts with '{'.
func ParseFields(contentType string, body []byte) (*Fields, *Error) {
	mt, _, _ := mime.ParseMediaType(contentType)
	trimmed := bytes.TrimSpace(body)
	switch {
	case len(trimmed) == 0:
		return &Fields{}, nil
	case trimmed[0] == '{':
		return parseJSON(trimmed)
	case mt == "application/x-www-form-urlencoded", mt == "", mt == "text/plain":
		return parseForm(trimmed)
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return parseJSON(trimmed)
	}
	return nil, InvalidRequest.WithMessage("The body must be JSON or application/x-www-form-urlencoded.")
}

// parseJSON reads a JSON object's fields, by their exact names, none
// given twice (see WalkObject).
func parseJSON(body []byte) (*Fields, *Error) {
	if string(body) == "null" {
		return &Fields{}, nil
	}
	var f Fields
	err := WalkObject(body, func(name string, dec *json.Decoder) error {
		if dst := f.named(name); dst != nil {
			return DecodeString(name, dec, dst)
		}
		return SkipValue(dec)
	})
	var fe *FieldError
	switch {
	case err == nil:
		return &f, nil
	case errors.As(err, &fe):
		return nil, InvalidRequest.WithMessage(fe.Error())
	case errors.Is(err, ErrTrailing):
		return nil, InvalidRequest.WithMessage("The body holds more than one JSON object.")
	default:
		return nil, InvalidRequest.WithMessage("The body is not a JSON object.")
	}
}

// named returns the field a request's key fills, or nil for keys the
// routes do not read.
func (f *Fields) named(name string) *string {
	switch name {
	case "code":
		return &f.Code
	case "appid":
		return &f.AppID
	case "encryptedData":
		return &f.EncryptedData
	case "iv":
		return &f.IV
	case "rawData":
		return &f.RawData
	case "signature":
		return &f.Signature
	}
	return nil
}

// parseForm reads an application/x-www-form-urlencoded body. As in JSON, a
// field given twice is refused.
func parseForm(body []byte) (*Fields, *Error) {
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, InvalidRequest.WithMessage("The form body is malformed.")
	}
	var f Fields
	for name, vals := range v {
		if len(vals) > 1 {
			return nil, InvalidRequest.WithMessage("The field " + name + " is given twice.")
		}
		if dst := f.named(name); dst != nil {
			*dst = vals[0]
		}
	}
	// A '+' in base64 sent unescaped in a form arrives as ' '.
	f.EncryptedData = repairBase64(f.EncryptedData)
	f.IV = repairBase64(f.IV)
	return &f, nil
}

// repairBase64 turns spaces back into the '+' they were.
func repairBase64(s string) string { return strings.ReplaceAll(s, " ", "+") }

// ValidCode reports whether a login or phone code is plausible. WeChat
// codes are short printable ASCII; anything else is refused before it
// reaches WeChat.
func ValidCode(code string) bool {
	if code == "" || len(code) > 256 {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] <= ' ' || code[i] > '~' {
			return false
		}
	}
	return true
}
