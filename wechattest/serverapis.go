package wechattest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/url"
	"strings"
)

// The server APIs an upstream calls through wechat_auth's gateway, with
// WeChat's checks: an access token the fake issued, and for the session
// APIs the signature made with the user's current session_key.

// servedPaths are the API paths the fake answers.
var servedPaths = map[string]bool{
	PathCode2Session: true, PathStableToken: true, PathToken: true, PathPhoneNumber: true,
	PathCheckSession: true, PathResetSessionKey: true, PathSubscribeSend: true, PathQRCode: true, PathMsgSecCheck: true,
}

// maxCountedPaths bounds how many distinct paths Calls counts.
const maxCountedPaths = 1024

// maxMessages bounds the messages kept: a sandbox may run for long.
const maxMessages = 1000

// Message is a subscription message the fake accepted.
type Message struct {
	AppID      string
	ToUser     string
	TemplateID string
	Data       map[string]map[string]string
}

// Messages returns the subscription messages sent so far (the last
// maxMessages).
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// LastQuery returns the query string of the last call to path, as sent.
func (s *Server) LastQuery(path string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastQuery[path]
}

// LastBody returns the body of the last call to path, as sent.
func (s *Server) LastBody(path string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.lastBody[path]...)
}

// AccessToken returns the app's current access token ("" when none was
// issued), for tests that check what was sent.
func (s *Server) AccessToken(appid string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.apps[appid]; a != nil {
		return a.token
	}
	return ""
}

// SessionKey returns the user's current session_key, for stored users and
// for the derived users of reusable auto codes alike.
func (s *Server) SessionKey(openid string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessionKeyLocked(openid)
}

func (s *Server) sessionKeyLocked(openid string) (string, bool) {
	if u := s.users[openid]; u != nil {
		return u.SessionKey, true
	}
	if s.derivesUsers() && strings.HasPrefix(openid, "o") {
		return s.derivedKeyLocked(openid), true
	}
	return "", false
}

// derivesUsers: reusable auto codes make users that are stored nowhere.
func (s *Server) derivesUsers() bool {
	return s.opts.AutoCodes && s.opts.ReusableCodes && !s.opts.RotateSessionKey
}

// derivedKeyLocked is the session_key of a derived user: from the openid
// and a secret of this server's, unless a reset gave a new one.
func (s *Server) derivedKeyLocked(openid string) string {
	if k, ok := s.resetKeys[openid]; ok {
		return k
	}
	m := hmac.New(sha256.New, s.seed[:])
	m.Write([]byte("session_key\x00" + openid))
	return base64.StdEncoding.EncodeToString(m.Sum(nil)[:16])
}

// checkSignatureLocked checks the signature of checksession and
// resetusersessionkey: hmac_sha256 with the user's current session_key.
func (s *Server) checkSignatureLocked(q url.Values) (openid string, ok bool) {
	openid = q.Get("openid")
	key, known := s.sessionKeyLocked(openid)
	if !known || q.Get("sig_method") != "hmac_sha256" {
		return openid, false
	}
	return openid, hmac.Equal([]byte(q.Get("signature")), []byte(hmacEmpty(key)))
}

// resetSessionKey gives the user a new session_key: the old one stops
// working, as WeChat's resetusersessionkey does.
func (s *Server) resetSessionKey(w http.ResponseWriter, r *http.Request) {
	s.sessionAPI(w, r, true)
}

// sessionAPI serves checksession and, with reset, resetusersessionkey:
// both check the token and the signature made with the current key.
func (s *Server) sessionAPI(w http.ResponseWriter, r *http.Request, reset bool) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, e := s.tokenApp(q.Get("access_token")); e != 0 {
		writeErr(w, e)
		return
	}
	openid, ok := s.checkSignatureLocked(q)
	if !ok {
		writeErr(w, ErrSessionKeyStale)
		return
	}
	if !reset {
		writeJSON(w, map[string]any{"errcode": 0, "errmsg": "ok"})
		return
	}
	key := NewSessionKey()
	if u := s.users[openid]; u != nil {
		u.SessionKey = key
	} else {
		s.resetKeys[openid] = key
	}
	writeJSON(w, map[string]any{"errcode": 0, "errmsg": "ok", "openid": openid, "session_key": key})
}

// decodePost reads the JSON body of a token-taking POST API and checks the
// token; it writes the error answer and returns "" when either fails.
func (s *Server) decodePost(w http.ResponseWriter, r *http.Request, v any) (appid string) {
	if r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(v) != nil {
		writeErr(w, ErrArgument)
		return ""
	}
	appid, e := s.tokenApp(r.URL.Query().Get("access_token"))
	if e != 0 {
		writeErr(w, e)
		return ""
	}
	return appid
}

func (s *Server) subscribeSend(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ToUser     string                       `json:"touser"`
		TemplateID string                       `json:"template_id"`
		Data       map[string]map[string]string `json:"data"`
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	appid := s.decodePost(w, r, &req)
	if appid == "" {
		return
	}
	if req.ToUser == "" {
		writeErr(w, ErrInvalidOpenID)
		return
	}
	if req.TemplateID == "" || len(req.Data) == 0 {
		writeErr(w, ErrArgument)
		return
	}
	if len(s.messages) == maxMessages {
		s.messages = append(s.messages[:0], s.messages[1:]...)
	}
	s.messages = append(s.messages, Message{AppID: appid, ToUser: req.ToUser, TemplateID: req.TemplateID, Data: req.Data})
	s.msgid++
	writeJSON(w, map[string]any{"errcode": 0, "errmsg": "ok", "msgid": s.msgid})
}

// QRCode is the image the fake's getwxacodeunlimit answers for scene: a
// PNG that depends on the scene only.
func QRCode(scene string) []byte {
	sum := sha256.Sum256([]byte(scene))
	const n = 16
	img := image.NewGray(image.Rect(0, 0, n, n))
	for i := 0; i < n*n; i++ {
		if sum[i/8%32]>>(i%8)&1 == 1 {
			img.SetGray(i%n, i/n, color.Gray{})
		} else {
			img.SetGray(i%n, i/n, color.Gray{Y: 255})
		}
	}
	var buf bytes.Buffer
	png.Encode(&buf, img)
	return buf.Bytes()
}

func (s *Server) qrCode(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Scene string `json:"scene"`
	}
	s.mu.Lock()
	appid := s.decodePost(w, r, &req)
	s.mu.Unlock()
	if appid == "" {
		return
	}
	if req.Scene == "" || len(req.Scene) > 32 {
		writeErr(w, ErrInvalidScene)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Write(QRCode(req.Scene))
}

func (s *Server) msgSecCheck(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Content string `json:"content"`
		Version int    `json:"version"`
		OpenID  string `json:"openid"`
		Scene   int    `json:"scene"`
	}
	s.mu.Lock()
	appid := s.decodePost(w, r, &req)
	s.mu.Unlock()
	if appid == "" {
		return
	}
	if req.Version != 2 || req.OpenID == "" || req.Scene < 1 || req.Scene > 4 {
		writeErr(w, ErrArgument)
		return
	}
	// "risky" in the content stands for what WeChat would flag.
	suggest, label := "pass", 100
	if strings.Contains(req.Content, "risky") {
		suggest, label = "risky", 20001
	}
	writeJSON(w, map[string]any{
		"errcode": 0, "errmsg": "ok", "trace_id": rid(),
		"result": map[string]any{"suggest": suggest, "label": label},
	})
}

// Hostile is an answer a real WeChat, or an egress proxy configured as
// the API base, may give and a gateway must not pass on as it is.
type Hostile int

const (
	// EchoJSON: 200 JSON whose errmsg quotes the request URL (errcode
	// 47001), as some of WeChat's error answers do.
	EchoJSON Hostile = iota + 1
	// EchoHTML: 502 text/html, an egress proxy's error page showing the
	// request URL.
	EchoHTML
	// EchoImage: 200 image/png, the QR code of scene "echo" with the
	// request URL in its bytes.
	EchoImage
	// EchoEarlier: 200 JSON quoting the URL of the call to the same path
	// before this one, as a caching proxy may answer.
	EchoEarlier
	// StaleWithSessionKey: errcode 87009 with a session_key member.
	StaleWithSessionKey
	// ResetForOtherUser: a reset answer (errcode 0, a new session_key)
	// for another openid.
	ResetForOtherUser
	// ResetWithDuplicates: a reset answer whose openid is given twice,
	// another user's first and the caller's last (what encoding/json
	// keeps).
	ResetWithDuplicates
	// ResetWithoutOpenID: a reset answer with a new session_key and no
	// openid.
	ResetWithoutOpenID
	// Huge: 200 JSON of 17 MiB, more than a gateway passes on.
	Huge
)

// OtherOpenID is the openid of the hostile reset answers' other user.
const OtherOpenID = "oHostileOtherUser0000000001"

// HostileNext makes the next call to path answer as h says. Every
// hostile answer also echoes the request URL in the headers Location,
// X-Request-URL and a Content-Type parameter.
func (s *Server) HostileNext(path string, h Hostile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[path] = append(s.failures[path], failure{hostile: h})
}

func (s *Server) answerHostile(w http.ResponseWriter, r *http.Request, h Hostile, earlier string) {
	u := "https://api.weixin.qq.com" + r.URL.RequestURI()
	ct := "application/json; charset=UTF-8"
	var body []byte
	switch h {
	case EchoJSON:
		body, _ = json.Marshal(map[string]any{"errcode": 47001, "errmsg": "data format error hint: [" + u + "] rid: " + rid()})
	case EchoEarlier:
		body, _ = json.Marshal(map[string]any{"errcode": 0, "errmsg": "ok", "cached_for": "https://api.weixin.qq.com" + r.URL.Path + "?" + earlier})
	case EchoHTML:
		ct = "text/html; charset=utf-8"
		body = []byte(fmt.Sprintf("<html><body><h1>502 Bad Gateway</h1><p>Upstream failed for <a href=\"%s\">%s</a></p><p>%s</p></body></html>", html.EscapeString(u), html.EscapeString(u), u))
	case EchoImage:
		ct = "image/png"
		body = append(QRCode("echo"), u...)
	case StaleWithSessionKey:
		body, _ = json.Marshal(map[string]any{"errcode": ErrSessionKeyStale, "errmsg": "invalid signature rid: " + rid(), "session_key": NewSessionKey()})
	case ResetForOtherUser:
		body, _ = json.Marshal(map[string]any{"errcode": 0, "errmsg": "ok", "openid": OtherOpenID, "session_key": NewSessionKey()})
	case ResetWithDuplicates:
		body = []byte(`{"errcode":0,"errmsg":"ok","openid":"` + OtherOpenID + `","session_key":"` + NewSessionKey() + `","openid":` + jsonString(r.URL.Query().Get("openid")) + `}`)
	case ResetWithoutOpenID:
		body, _ = json.Marshal(map[string]any{"errcode": 0, "errmsg": "ok", "session_key": NewSessionKey()})
	case Huge:
		body = []byte(`{"errcode":0,"errmsg":"ok","pad":"` + strings.Repeat("x", 17<<20) + `"}`)
	}
	w.Header().Set("Location", u)
	w.Header().Set("X-Request-URL", u)
	w.Header().Set("Content-Type", ct+"; url="+url.QueryEscape(u))
	status := http.StatusOK
	if h == EchoHTML {
		status = http.StatusBadGateway
	}
	w.WriteHeader(status)
	w.Write(body)
}

func jsonString(v string) string {
	b, _ := json.Marshal(v)
	return string(b)
}
