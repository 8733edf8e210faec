package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
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
// can turn back into it with the decodings pages and programs apply, in
// any mix and nested: percent-encoding (any case or extent), the escapes
// of JSON and JavaScript strings (\uXXXX, \xXX, a backslash before
// another character), HTML's numeric character references (&#NN; &#xHH;),
// and UTF-16 or UTF-32 text of it; whole, or its first or last 16
// characters (a cut-off echo). The text is read as it is, not parsed:
// a byte-order mark, a number JSON cannot hold, a stray comma, a JSONP
// wrapper or an HTML page around an escaped token hide nothing.
func holdsToken(text []byte, tokens []string) bool {
	// A token's first or last secretPiece bytes are enough to count: an
	// echo cut short (an error page that truncates the URL) or cut off at
	// its start gives the caller all but a few characters of the token.
	has := func(b []byte) bool {
		for _, t := range tokens {
			if t == "" {
				continue
			}
			if len(t) <= secretPiece {
				if bytes.Contains(b, []byte(t)) {
					return true
				}
				continue
			}
			if bytes.Contains(b, []byte(t[:secretPiece])) || bytes.Contains(b, []byte(t[len(t)-secretPiece:])) {
				return true
			}
		}
		return false
	}
	views := [][]byte{text}
	if bytes.IndexByte(text, 0) >= 0 {
		// UTF-16 and UTF-32 spell ASCII with NUL bytes between.
		views = append(views, bytes.ReplaceAll(text, []byte{0}, nil))
	}
	var bufs [2][]byte // each round decodes into the one it does not read
	for _, b := range views {
		for r := 0; ; r++ {
			if has(b) {
				return true
			}
			if r == maxUnescapes {
				break
			}
			next, changed := unescaped(bufs[r%2][:0], b)
			if !changed {
				break
			}
			bufs[r%2], b = next, next
		}
	}
	return false
}

// secretPiece is how many consecutive characters of a secret (an access
// token, an app secret, a login code) count as the secret where WeChat's
// answers show them: 16 characters of a random value are no accident, and
// fewer leave too much to guess. holdsToken looks for a token's first and
// last secretPiece characters, safeMessage for any secretPiece of a
// request value, and an access token shorter than this is no token.
const secretPiece = 16

// maxUnescapes is how many rounds of decoding holdsToken applies. Binary
// answers (a mini program code's PNG) change in every round, so the
// rounds stop there: a token encoded more deeply is not found.
const maxUnescapes = 8

// unescaped appends to dst b with one round of decoding applied left to
// right: %XX, \uXXXX, \xXX, \c (for any other c), &#NN; and &#xHH; (the
// ';' may be missing), each where it is well formed; anything else is
// kept. It reports whether anything was decoded; when nothing was, it
// returns b itself.
func unescaped(dst, b []byte) ([]byte, bool) {
	// next holds where each of '%', '\\' and '&' is next found at or
	// after pos (-1: nowhere), each looked for with the fast IndexByte.
	specials := [3]byte{'%', '\\', '&'}
	var next [3]int
	for k, c := range specials {
		next[k] = bytes.IndexByte(b, c)
	}
	pos := 0
	find := func() int {
		at := -1
		for k, c := range specials {
			if next[k] >= 0 && next[k] < pos {
				next[k] = bytes.IndexByte(b[pos:], c)
				if next[k] >= 0 {
					next[k] += pos
				}
			}
			if next[k] >= 0 && (at < 0 || next[k] < at) {
				at = next[k]
			}
		}
		return at
	}
	i := find()
	if i < 0 {
		return b, false
	}
	out := slices.Grow(dst, len(b))
	changed := false
	for ; i >= 0; i = find() {
		out = append(out, b[pos:i]...)
		e := b[i:]
		n := 1 // bytes of e taken
		switch c := e[0]; {
		case c == '%' && len(e) > 2 && isHex(e[1]) && isHex(e[2]):
			out = append(out, unhex(e[1])<<4|unhex(e[2]))
			n = 3
		case c == '\\' && len(e) > 5 && e[1] == 'u' && isHex(e[2]) && isHex(e[3]) && isHex(e[4]) && isHex(e[5]):
			r := rune(unhex(e[2]))<<12 | rune(unhex(e[3]))<<8 | rune(unhex(e[4]))<<4 | rune(unhex(e[5]))
			out = utf8.AppendRune(out, r)
			n = 6
		case c == '\\' && len(e) > 3 && e[1] == 'x' && isHex(e[2]) && isHex(e[3]):
			out = append(out, unhex(e[2])<<4|unhex(e[3]))
			n = 4
		case c == '\\' && len(e) > 1 && !introduces(e[1]):
			out = append(out, e[1])
			n = 2
		case c == '&' && len(e) > 3 && e[1] == '#':
			if r, m := charRef(e[2:]); m > 0 {
				out = utf8.AppendRune(out, r)
				n = 2 + m
			} else {
				out = append(out, c)
			}
		default:
			out = append(out, c)
		}
		changed = changed || n > 1
		pos = i + n
	}
	return append(out, b[pos:]...), changed
}

// introduces reports whether c, after a backslash that is no \uXXXX or
// \xXX, may begin an escape of another kind (or of this kind once it is
// decoded): the backslash is then kept and c left to the next escape, so
// a backslash does not eat what a page's own decoding would read.
func introduces(c byte) bool {
	return c == '%' || c == '&' || c == 'u' || c == 'x'
}

// charRef reads the digits of an HTML numeric character reference after
// "&#" (decimal, or x and hex), with its ';' when there is one, and gives
// the character and how many bytes it took (0: none).
func charRef(b []byte) (rune, int) {
	base, i := rune(10), 0
	if b[0] == 'x' || b[0] == 'X' {
		base, i = 16, 1
	}
	start := i
	for i < len(b) && b[i] == '0' { // browsers take any number of zeros
		i++
	}
	var r rune
	digits := i
	for ; i < len(b) && i-digits < 8; i++ {
		d := b[i]
		if !(d >= '0' && d <= '9' || base == 16 && isHex(d)) {
			break
		}
		r = r*base + rune(unhex(d))
	}
	if i == start {
		return 0, 0
	}
	if i < len(b) && b[i] == ';' {
		i++
	}
	return r, i
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'f'
}

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return (c | 0x20) - 'a' + 10
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
