package wechatauth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path"

	"go.uber.org/zap"

	"github.com/caddy-wechat/wechatauth/internal/apierr"
	"github.com/caddy-wechat/wechatauth/internal/session"
	"github.com/caddy-wechat/wechatauth/wechat"
)

// The session-key services: WeChat APIs that need the user's session_key,
// which only this server holds, served for the user's newest live session.
const (
	pathCheckSession  = "/wxa/checksession"
	pathResetKey      = "/wxa/resetusersessionkey"
	pathUserSignature = "/wechat_auth/user_signature"
)

var sessionKeyPaths = map[string]bool{pathCheckSession: true, pathResetKey: true, pathUserSignature: true}

// sessionHMAC is the signature WeChat wants made with a session_key:
// hex(hmac_sha256(key = the session_key's base64 text, message)).
func sessionHMAC(sessionKey string, message []byte) string {
	m := hmac.New(sha256.New, []byte(sessionKey))
	m.Write(message)
	return hex.EncodeToString(m.Sum(nil))
}

func (g *APIGateway) serveSessionKey(w http.ResponseWriter, r *http.Request, label string, q gatewayQuery, body []byte) {
	s, aerr := g.newestSession(r, q)
	if aerr != nil {
		g.answerError(w, r, label, q.appid, q.openid, aerr)
		return
	}
	switch r.URL.Path {
	case pathUserSignature:
		if r.Method != http.MethodPost || len(body) == 0 {
			g.answerError(w, r, label, q.appid, q.openid, apierr.InvalidRequest.WithMessage("POST the exact signData of wx.requestVirtualPayment as the body."))
			return
		}
		apierr.WriteJSON(w, http.StatusOK, map[string]string{"signature": sessionHMAC(s.SessionKey, body), "sig_method": "hmac_sha256"})
		g.done(r, label, "ok", q.appid, q.openid)
	case pathCheckSession, pathResetKey:
		// A GET, as WeChat documents it, whatever the caller sent.
		g.sessionKeyCall(w, r, label, q, s)
	}
}

func signatureQuery(s *session.Session) string {
	return "signature=" + sessionHMAC(s.SessionKey, nil) + "&sig_method=hmac_sha256"
}

// newestSession finds the user's newest live session.
func (g *APIGateway) newestSession(r *http.Request, q gatewayQuery) (*session.Session, *apierr.Error) {
	s, err := g.base.store.NewestSession(r.Context(), q.appid, q.openid)
	switch {
	case errors.Is(err, session.ErrNoUserSession):
		return nil, apierr.NoLiveSession
	case err != nil:
		g.logger.Warn("session store unavailable", zap.Error(err))
		return nil, apierr.StoreUnavailable
	}
	return s, nil
}

// sessionKeyCall makes checksession or resetusersessionkey with the
// signature of the user's session_key, and answers WeChat's answer
// without any session_key: WeChat's answer is input too, and must not
// hand the caller a key, errors included. A reset's new key replaces the
// stored one (later decryption and signing use it) only from a success
// answer for the same openid whose members are each given once.
func (g *APIGateway) sessionKeyCall(w http.ResponseWriter, r *http.Request, label string, q gatewayQuery, s *session.Session) {
	a, err := g.call(r.Context(), http.MethodGet, r.URL.Path, q, signatureQuery(s), "", nil)
	if err != nil {
		g.answerWeChatError(w, r, label, q, err)
		return
	}
	api := path.Base(r.URL.Path)
	sa, err := readSessionAnswer(a.Body)
	if err == nil && ((s.SessionKey != "" && bytes.Contains(sa.body, []byte(s.SessionKey))) || (sa.sessionKey != "" && bytes.Contains(sa.body, []byte(sa.sessionKey)))) {
		err = errors.New("answer holds a session_key elsewhere")
	}
	if err != nil {
		g.answerWeChatError(w, r, label, q, &wechat.UnavailableError{API: api, Err: err})
		return
	}
	if r.URL.Path == pathResetKey && a.Errcode == 0 && a.Status == http.StatusOK {
		if !wechat.ValidSessionKey(sa.sessionKey) || sa.openid != s.OpenID {
			// A key that is not base64 of 16 bytes, or not said to be
			// this user's, is never stored.
			g.answerWeChatError(w, r, label, q, &wechat.UnavailableError{API: api, Err: errors.New("answer without a valid session_key for the user")})
			return
		}
		if err := g.base.store.SetSessionKey(r.Context(), s, sa.sessionKey); err != nil {
			// WeChat has rotated the key: the stored one is stale now.
			g.logger.Warn("new session_key could not be stored; the user must log in again", zap.Error(err))
			aerr := apierr.StoreUnavailable
			if errors.Is(err, session.ErrNoSession) {
				aerr = apierr.NoLiveSession
			}
			g.answerError(w, r, label, q.appid, q.openid, aerr)
			return
		}
	}
	writeAnswer(w, &wechat.Answer{Status: a.Status, ContentType: "application/json; charset=utf-8", Body: sa.body})
	g.done(r, label, answerResult(a), q.appid, q.openid)
}

// sessionAnswer is a session-key service's answer from WeChat, re-encoded.
type sessionAnswer struct {
	body       []byte // the answer without any member named session_key, at any depth
	openid     string // the top-level openid, when a string
	sessionKey string // the top-level session_key, when a string
}

// readSessionAnswer reads WeChat's answer, which must be one JSON object
// in which no object gives a member twice (names compared as a lenient
// reader would: folded by foldParam), and re-encodes it without the
// members whose folded name is session_key, members in WeChat's order.
func readSessionAnswer(body []byte) (*sessionAnswer, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var sa sessionAnswer
	var out bytes.Buffer
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, apierr.ErrNotObject
	}
	if err := copyObject(dec, &out, 0, &sa); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, apierr.ErrTrailing
	}
	sa.body = out.Bytes()
	return &sa, nil
}

// maxAnswerDepth bounds the nesting of a session-key service's answer.
const maxAnswerDepth = 32

// copyObject copies the members of an object whose '{' was read to out,
// dropping session_key members; top (depth 0) also fills sa.
func copyObject(dec *json.Decoder, out *bytes.Buffer, depth int, sa *sessionAnswer) error {
	if depth > maxAnswerDepth {
		return apierr.ErrNotObject
	}
	out.WriteByte('{')
	seen := make(map[string]bool, 8)
	first := true
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return apierr.ErrNotObject
		}
		name := tok.(string)
		folded := foldParam(name)
		if seen[folded] {
			return &apierr.FieldError{Name: name, Twice: true}
		}
		seen[folded] = true
		if folded == "session_key" {
			var v any
			if err := dec.Decode(&v); err != nil {
				return apierr.ErrNotObject
			}
			if str, ok := v.(string); ok && depth == 0 && name == "session_key" {
				sa.sessionKey = str
			}
			continue
		}
		if !first {
			out.WriteByte(',')
		}
		first = false
		nb, _ := json.Marshal(name)
		out.Write(nb)
		out.WriteByte(':')
		mark := out.Len()
		if err := copyValue(dec, out, depth+1, sa); err != nil {
			return err
		}
		if depth == 0 && name == "openid" {
			json.Unmarshal(out.Bytes()[mark:], &sa.openid)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return apierr.ErrNotObject
	}
	out.WriteByte('}')
	return nil
}

func copyValue(dec *json.Decoder, out *bytes.Buffer, depth int, sa *sessionAnswer) error {
	tok, err := dec.Token()
	if err != nil {
		return apierr.ErrNotObject
	}
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			return copyObject(dec, out, depth, sa)
		case '[':
			if depth > maxAnswerDepth {
				return apierr.ErrNotObject
			}
			out.WriteByte('[')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					out.WriteByte(',')
				}
				if err := copyValue(dec, out, depth+1, sa); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil {
				return apierr.ErrNotObject
			}
			out.WriteByte(']')
			return nil
		}
		return apierr.ErrNotObject
	case json.Number:
		out.WriteString(v.String())
	case nil:
		out.WriteString("null")
	default: // string, bool
		b, _ := json.Marshal(v)
		out.Write(b)
	}
	return nil
}
