package wechat

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// APIForward names forwarded calls in errors.
const APIForward = "forward"

// MaxForwardAnswer bounds how much of a forwarded call's answer is read:
// WeChat's largest answers (QR code images) are far smaller.
const MaxForwardAnswer = 16 << 20

// ErrAnswerTooLarge is a forwarded call's answer larger than
// MaxForwardAnswer, which is not passed on.
var ErrAnswerTooLarge = errors.New("answer larger than 16 MiB")

// Answer is WeChat's answer to a forwarded call, as it came.
type Answer struct {
	Status      int
	ContentType string
	Body        []byte
	// Errcode is the errcode of a JSON answer, 0 when there is none.
	Errcode int
}

// Forward calls WeChat's server API at path for the app, with rawQuery (a
// query string without access_token) and the app's access token added.
// It is the core of a token-adding gateway:
//   - when WeChat answers that the token is invalid or expired (40001,
//     40014, 42001), the cached token is dropped, a stable token fetched
//     again (never with force_refresh) and the call sent once more;
//   - after a transport failure only a GET is sent again, since a POST may
//     already have acted (a message sent);
//   - a redirect or an answer larger than MaxForwardAnswer is an
//     *UnavailableError, any other answer is returned as it is, whatever
//     its status.
//
// Errors never contain the URL, which holds the token.
func (c *Client) Forward(ctx context.Context, appid, method, path, rawQuery, contentType string, body []byte) (*Answer, error) {
	// One budget for the whole call: token fetch, call and retries.
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var ans *Answer
	var used [2]string // the tokens sent, for scrubbing the answer
	err := c.withAccessToken(ctx, appid, func(tok string) error {
		if used[0] == "" {
			used[0] = tok
		} else {
			used[1] = tok
		}
		var err error
		ans, err = c.forwardOnce(ctx, method, path, rawQuery, tok, contentType, body)
		var ue *UnavailableError
		if errors.As(err, &ue) && method == http.MethodGet && ctx.Err() == nil {
			ans, err = c.forwardOnce(ctx, method, path, rawQuery, tok, contentType, body)
		}
		if err != nil {
			return err
		}
		if KindOfErrcode(ans.Errcode) == KindTokenInvalid {
			return &Error{API: APIForward, Code: ans.Errcode}
		}
		return nil
	})
	var we *Error
	if errors.As(err, &we) && ans != nil && ans.Errcode == we.Code {
		// The token was refused twice: the caller gets WeChat's answer.
		err = nil
	}
	if ans != nil && !c.scrubTokens(appid, used, ans) {
		return nil, &UnavailableError{API: APIForward, Err: errors.New("the answer holds the access token in a form that cannot be replaced")}
	}
	return ans, err
}

// TokenPlaceholder replaces an access token that an answer echoes.
const TokenPlaceholder = "ACCESS_TOKEN"

// scrubTokens replaces, in the answer's body and Content-Type, every
// access token of the app the process knows (the ones this call sent,
// the current one and the recent ones), as sent and as escaped in a URL:
// an error page of WeChat's, or of an egress proxy configured as the API
// base, may echo the request URL, and the token must never reach the
// caller. Other headers of the answer are never passed on. It reports
// false when a token is still there in another form a reader could undo
// (other percent-encoding, JSON escapes): such an answer is not passed on.
func (c *Client) scrubTokens(appid string, used [2]string, a *Answer) bool {
	var buf [2 + 1 + recentTokens]string
	known := append(buf[:0], used[0], used[1])
	if tc := c.tokens[appid]; tc != nil {
		known = tc.appendKnown(known)
	}
	for i, t := range known {
		if t == "" || slices.Contains(known[:i], t) {
			continue
		}
		for _, form := range [...]string{t, url.QueryEscape(t), url.PathEscape(t)} {
			if form == "" {
				continue
			}
			if bytes.Contains(a.Body, []byte(form)) {
				a.Body = bytes.ReplaceAll(a.Body, []byte(form), []byte(TokenPlaceholder))
			}
			if strings.Contains(a.ContentType, form) {
				a.ContentType = strings.ReplaceAll(a.ContentType, form, TokenPlaceholder)
			}
		}
	}
	return !holdsToken(a.Body, known) && !holdsToken([]byte(a.ContentType), known)
}

// holdsToken reports whether text holds one of tokens in a form a reader
// can turn back into it: percent-encoded in any case or extent, or inside
// a JSON string with any of JSON's escapes.
func holdsToken(text []byte, tokens []string) bool {
	has := func(b []byte) bool {
		for _, t := range tokens {
			if t != "" && bytes.Contains(b, []byte(t)) {
				return true
			}
		}
		return false
	}
	if has(percentDecoded(text)) {
		return true
	}
	if !bytes.ContainsRune(text, '\\') {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(text))
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		if str, ok := tok.(string); ok && has(percentDecoded([]byte(str))) {
			return true
		}
	}
}

// percentDecoded is b with every %XX (either case) decoded; anything else,
// a malformed escape included, is kept as it is.
func percentDecoded(b []byte) []byte {
	if bytes.IndexByte(b, '%') < 0 {
		return b
	}
	out := make([]byte, 0, len(b))
	var x [1]byte
	for i := 0; i < len(b); i++ {
		if b[i] == '%' && i+2 < len(b) {
			if _, err := hex.Decode(x[:], b[i+1:i+3]); err == nil {
				out = append(out, x[0])
				i += 2
				continue
			}
		}
		out = append(out, b[i])
	}
	return out
}

func (c *Client) forwardOnce(ctx context.Context, method, path, rawQuery, tok, contentType string, body []byte) (*Answer, error) {
	u := c.base + (&url.URL{Path: path}).EscapedPath() + "?"
	if rawQuery != "" {
		u += rawQuery + "&"
	}
	u += "access_token=" + url.QueryEscape(tok)
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, &UnavailableError{API: APIForward, Err: errors.New("cannot build request (check api_base and the path)")}
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	// The answer must come as it is, to be searched for the token: net/http
	// would otherwise ask for gzip and decode only one layer of it.
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, &UnavailableError{API: APIForward, Err: stripURL(err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return nil, &UnavailableError{API: APIForward, Err: fmt.Errorf("HTTP status %d: WeChat does not redirect", resp.StatusCode)}
	}
	// An encoded body (gzip, deflate, br, in any header line) cannot be
	// searched for the token, nor passed on without the header it needs.
	if !identityEncoded(resp.Header) {
		return nil, &UnavailableError{API: APIForward, Err: errors.New("answer in a Content-Encoding the gateway did not ask for")}
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxForwardAnswer+1))
	if err != nil {
		return nil, &UnavailableError{API: APIForward, Err: stripURL(err)}
	}
	if len(raw) > MaxForwardAnswer {
		return nil, &UnavailableError{API: APIForward, Err: ErrAnswerTooLarge}
	}
	return &Answer{
		Status:      resp.StatusCode,
		ContentType: resp.Header.Get("Content-Type"),
		Body:        raw,
		Errcode:     errcodeOf(raw),
	}, nil
}

// identityEncoded reports whether every Content-Encoding the header gives,
// in every line and list, is identity.
func identityEncoded(h http.Header) bool {
	for _, line := range h.Values("Content-Encoding") {
		for _, ce := range strings.Split(line, ",") {
			if ce = strings.TrimSpace(ce); ce != "" && !strings.EqualFold(ce, "identity") {
				return false
			}
		}
	}
	return true
}

// errcodeOf reads the errcode of a JSON object answer; an image, or JSON
// without one, has none. The cheap test comes first: most answers are
// either an image or short JSON.
func errcodeOf(body []byte) int {
	b := bytes.TrimLeft(body, " \t\r\n")
	if len(b) == 0 || b[0] != '{' || !bytes.Contains(b, []byte(`"errcode"`)) {
		return 0
	}
	var s status
	if json.Unmarshal(b, &s) != nil {
		return 0
	}
	return s.ErrCode
}
