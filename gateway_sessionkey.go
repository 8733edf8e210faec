package wechatauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"

	"go.uber.org/zap"

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
			g.answerError(w, r, label, q.appid, q.openid, errInvalidRequest.withMessage("POST the exact signData of wx.requestVirtualPayment as the body."))
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"signature": sessionHMAC(s.SessionKey, body), "sig_method": "hmac_sha256"})
		g.done(r, label, "ok", q.appid, q.openid)
	case pathCheckSession:
		// A GET, as WeChat documents it, whatever the caller sent.
		g.forward(w, r, label, q, http.MethodGet, signatureQuery(s), nil)
	case pathResetKey:
		g.resetSessionKey(w, r, label, q, s)
	}
}

func signatureQuery(s *Session) string {
	return "signature=" + sessionHMAC(s.SessionKey, nil) + "&sig_method=hmac_sha256"
}

// newestSession finds the user's newest live session.
func (g *APIGateway) newestSession(r *http.Request, q gatewayQuery) (*Session, *apiError) {
	s, err := g.base.store.NewestSession(r.Context(), q.appid, q.openid)
	switch {
	case errors.Is(err, errNoUserSession):
		return nil, errNoLiveSession
	case err != nil:
		g.logger.Warn("session store unavailable", zap.Error(err))
		return nil, errStoreUnavailable
	}
	return s, nil
}

// resetSessionKey asks WeChat for a new session_key, which replaces the
// stored one (later decryption and signing use it) and is removed from
// the answer.
func (g *APIGateway) resetSessionKey(w http.ResponseWriter, r *http.Request, label string, q gatewayQuery, s *Session) {
	a, err := g.call(r.Context(), http.MethodGet, pathResetKey, q, signatureQuery(s), "", nil)
	if err != nil {
		g.answerWeChatError(w, r, label, q, err)
		return
	}
	if a.Errcode != 0 || a.Status != http.StatusOK {
		writeAnswer(w, a)
		g.done(r, label, answerResult(a), q.appid, q.openid)
		return
	}
	var fields map[string]json.RawMessage
	var got struct {
		OpenID     string `json:"openid"`
		SessionKey string `json:"session_key"`
	}
	if json.Unmarshal(a.Body, &fields) != nil || json.Unmarshal(a.Body, &got) != nil ||
		!wechat.ValidSessionKey(got.SessionKey) || (got.OpenID != "" && got.OpenID != s.OpenID) {
		// WeChat's answer is input too: a key that is not base64 of 16
		// bytes, or another user's, is never stored.
		g.answerWeChatError(w, r, label, q, &wechat.UnavailableError{API: "resetusersessionkey", Err: errors.New("answer without a valid session_key")})
		return
	}
	if err := g.base.store.SetSessionKey(r.Context(), s, got.SessionKey); err != nil {
		// WeChat has rotated the key: the stored one is stale now.
		g.logger.Warn("new session_key could not be stored; the user must log in again", zap.Error(err))
		aerr := errStoreUnavailable
		if errors.Is(err, errNoSession) {
			aerr = errNoLiveSession
		}
		g.answerError(w, r, label, q.appid, q.openid, aerr)
		return
	}
	delete(fields, "session_key")
	writeJSON(w, a.Status, fields)
	g.done(r, label, "ok", q.appid, q.openid)
}
