package wechatauth

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

// maxBody is the largest request body the routes accept.
const maxBody = 64 << 10

// maxDiscard is the most of an unwanted body read before answering, as in
// net/http.
const maxDiscard = 256 << 10

// bodyReadTimeout bounds how long a client may take to send a body.
const bodyReadTimeout = 10 * time.Second

// fields are the request fields the routes read.
type fields struct {
	Code          string `json:"code"`
	AppID         string `json:"appid"`
	EncryptedData string `json:"encryptedData"`
	IV            string `json:"iv"`
	RawData       string `json:"rawData"`
	Signature     string `json:"signature"`
}

// readBody reads at most maxBody bytes of the request body, giving the
// client bodyReadTimeout to send them.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, *apiError) {
	return readBodyUpTo(w, r, maxBody, errPayloadTooLarge)
}

// readBodyUpTo reads at most limit bytes of the body; a larger one is
// answered tooLarge.
func readBodyUpTo(w http.ResponseWriter, r *http.Request, limit int64, tooLarge *apiError) ([]byte, *apiError) {
	if r.ContentLength > limit {
		return nil, tooLarge
	}
	defer bodyDeadline(w)()
	b, err := io.ReadAll(limitBody(w, r, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge
		}
		return nil, errInvalidRequest.withMessage("The request body could not be read.")
	}
	return b, nil
}

// bodyDeadline gives the client bodyReadTimeout to send the body; the
// function it returns lifts the deadline again.
func bodyDeadline(w http.ResponseWriter) (lift func()) {
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(time.Now().Add(bodyReadTimeout)) != nil {
		return func() {}
	}
	return func() { rc.SetReadDeadline(time.Time{}) }
}

// discardBody reads and drops what is left of a body the answer did not
// need, before the handler returns. net/http does that after the handler,
// but not for a client that sent "Connection: close": it closes the
// connection with the body half sent, and the TCP reset loses the answer
// too. Past net/http's own allowance (256 KiB) the limit is hit, and the
// server then closes the connection gracefully after the answer.
func discardBody(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength == 0 {
		return
	}
	defer bodyDeadline(w)()
	io.Copy(io.Discard, limitBody(w, r, maxDiscard))
}

// limitBody is http.MaxBytesReader on net/http's own ResponseWriter, under
// Caddy's wrappers: only that one learns that the limit was hit, and then
// closes the connection gracefully after the answer instead of resetting
// it under a client still sending.
func limitBody(w http.ResponseWriter, r *http.Request, n int64) io.ReadCloser {
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		w = u.Unwrap()
	}
	return http.MaxBytesReader(w, r.Body, n)
}

// readFields parses a JSON or application/x-www-form-urlencoded body.
func readFields(w http.ResponseWriter, r *http.Request) (*fields, *apiError) {
	body, aerr := readBody(w, r)
	if aerr != nil {
		return nil, aerr
	}
	return parseFields(r.Header.Get("Content-Type"), body)
}

// parseFields parses a body by its content type. A body with no usable
// content type is read as JSON when it looks like a JSON object and as a
// form otherwise, since mini programs send both. A form-typed body that is
// a JSON object is read as JSON: curl -d and some wx.request wrappers label
// JSON that way, and no form starts with '{'.
func parseFields(contentType string, body []byte) (*fields, *apiError) {
	mt, _, _ := mime.ParseMediaType(contentType)
	trimmed := bytes.TrimSpace(body)
	switch {
	case len(trimmed) == 0:
		return &fields{}, nil
	case trimmed[0] == '{':
		return parseJSON(trimmed)
	case mt == "application/x-www-form-urlencoded", mt == "", mt == "text/plain":
		return parseForm(trimmed)
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return parseJSON(trimmed)
	}
	return nil, errInvalidRequest.withMessage("The body must be JSON or application/x-www-form-urlencoded.")
}

// parseJSON reads a JSON object's fields, by their exact names, none
// given twice (see walkObject).
func parseJSON(body []byte) (*fields, *apiError) {
	if string(body) == "null" {
		return &fields{}, nil
	}
	var f fields
	err := walkObject(body, func(name string, dec *json.Decoder) error {
		if dst := f.named(name); dst != nil {
			return decodeString(name, dec, dst)
		}
		return skipValue(dec)
	})
	var fe *fieldError
	switch {
	case err == nil:
		return &f, nil
	case errors.As(err, &fe):
		return nil, errInvalidRequest.withMessage(fe.Error())
	case errors.Is(err, errTrailing):
		return nil, errInvalidRequest.withMessage("The body holds more than one JSON object.")
	default:
		return nil, errInvalidRequest.withMessage("The body is not a JSON object.")
	}
}

// named returns the field a request's key fills, or nil for keys the
// routes do not read.
func (f *fields) named(name string) *string {
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
func parseForm(body []byte) (*fields, *apiError) {
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, errInvalidRequest.withMessage("The form body is malformed.")
	}
	var f fields
	for name, vals := range v {
		if len(vals) > 1 {
			return nil, errInvalidRequest.withMessage("The field " + name + " is given twice.")
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

// validCode reports whether a login or phone code is plausible. WeChat
// codes are short printable ASCII; anything else is refused before it
// reaches WeChat.
func validCode(code string) bool {
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
