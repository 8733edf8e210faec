package wechattest

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Push builds what WeChat's servers send to a 消息推送 (message push) URL,
// for tests and for trying a receiver without a WeChat account. Its crypto
// is written from WeChat's documentation on its own, so that it can check
// the receiver's rather than share its mistakes.
type Push struct {
	Token  string // the console's Token
	AESKey string // the console's EncodingAESKey (43 characters); needed in safe and compatibility mode
	AppID  string // the appid that trails the plaintext
	JSON   bool   // data format JSON (mini programs may choose it); XML otherwise
	Safe   bool   // 安全模式: the body carries only Encrypt
	Compat bool   // 兼容模式: the plaintext fields and Encrypt side by side

	// ToUserName is the app's original id written into messages built by
	// Text and Event; "gh_0123456789ab" when empty.
	ToUserName string
	// Timestamp and Nonce, when set, replace the current time and a random
	// nonce: a push built twice with them is the same push (WeChat's retry).
	Timestamp, Nonce string
}

// PushRequest is one built push: the query WeChat puts on the URL and the
// body it posts.
type PushRequest struct {
	Query       url.Values
	Body        []byte
	ContentType string
}

// Build signs plaintext, and in safe or compatibility mode encrypts it,
// the way WeChat pushes it: signature, timestamp, nonce and openid on the
// query, plus encrypt_type=aes and msg_signature when encrypted.
func (p Push) Build(plaintext []byte) (PushRequest, error) {
	if p.Token == "" {
		return PushRequest{}, errors.New("wechattest: push needs a Token")
	}
	if p.Safe && p.Compat {
		return PushRequest{}, errors.New("wechattest: a push is either safe or compatibility mode")
	}
	ts, nonce := p.Timestamp, p.Nonce
	if ts == "" {
		ts = strconv.FormatInt(time.Now().Unix(), 10)
	}
	if nonce == "" {
		nonce = randomDigits(10)
	}
	to, from := p.peek(plaintext)
	q := url.Values{}
	q.Set("signature", pushSign(p.Token, ts, nonce))
	q.Set("timestamp", ts)
	q.Set("nonce", nonce)
	if from != "" {
		q.Set("openid", from)
	}
	req := PushRequest{Query: q, Body: plaintext, ContentType: "text/xml"}
	if p.JSON {
		req.ContentType = "application/json"
	}
	if !p.Safe && !p.Compat {
		return req, nil
	}
	enc, err := p.Encrypt(plaintext)
	if err != nil {
		return PushRequest{}, err
	}
	q.Set("encrypt_type", "aes")
	q.Set("msg_signature", pushSign(p.Token, ts, nonce, enc))
	switch {
	case p.Safe && p.JSON:
		req.Body, _ = json.Marshal(struct{ ToUserName, Encrypt string }{to, enc})
	case p.Safe:
		req.Body = []byte("<xml><ToUserName>" + cdata(to) + "</ToUserName><Encrypt>" + cdata(enc) + "</Encrypt></xml>")
	case p.JSON:
		i := bytes.LastIndexByte(plaintext, '}')
		if i < 0 || !json.Valid(plaintext) {
			return PushRequest{}, errors.New("wechattest: compatibility mode needs a JSON object")
		}
		field, _ := json.Marshal(enc)
		sep := ","
		if len(bytes.TrimSpace(plaintext[:i])) == 1 { // "{}"
			sep = ""
		}
		req.Body = fmt.Appendf(nil, "%s%s\"Encrypt\":%s%s", plaintext[:i], sep, field, plaintext[i:])
	default:
		i := bytes.LastIndex(plaintext, []byte("</xml>"))
		if i < 0 {
			return PushRequest{}, errors.New("wechattest: compatibility mode needs an <xml> message")
		}
		req.Body = fmt.Appendf(nil, "%s<Encrypt>%s</Encrypt>%s", plaintext[:i], cdata(enc), plaintext[i:])
	}
	return req, nil
}

// Request is Build as an *http.Request: a POST to target with the query
// added to target's own.
func (p Push) Request(target string, plaintext []byte) (*http.Request, error) {
	pr, err := p.Build(plaintext)
	if err != nil {
		return nil, err
	}
	u, err := withQuery(target, pr.Query)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(pr.Body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", pr.ContentType)
	return req, nil
}

// URLCheck is the console's check of the URL: a GET with signature,
// timestamp, nonce and echostr, to be answered with echostr verbatim.
func (p Push) URLCheck(target, echostr string) (*http.Request, error) {
	ts, nonce := p.Timestamp, p.Nonce
	if ts == "" {
		ts = strconv.FormatInt(time.Now().Unix(), 10)
	}
	if nonce == "" {
		nonce = randomDigits(10)
	}
	q := url.Values{}
	q.Set("signature", pushSign(p.Token, ts, nonce))
	q.Set("echostr", echostr)
	q.Set("timestamp", ts)
	q.Set("nonce", nonce)
	u, err := withQuery(target, q)
	if err != nil {
		return nil, err
	}
	return http.NewRequest(http.MethodGet, u, nil)
}

func withQuery(target string, q url.Values) (string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", err
	}
	all := u.Query()
	for k, v := range q {
		all[k] = v
	}
	u.RawQuery = all.Encode()
	return u.String(), nil
}

// Reply is a passive reply as WeChat reads it.
type Reply struct {
	Message          []byte // the decrypted reply
	TimeStamp, Nonce string
}

// OpenReply checks an encrypted passive reply as WeChat would: the XML
// <xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/></xml> or JSON
// {"Encrypt","MsgSignature","TimeStamp":<number>,"Nonce":"<string>"}
// envelope, MsgSignature over Token, TimeStamp, Nonce and Encrypt, and the
// trailing appid; it returns the decrypted reply.
func (p Push) OpenReply(body []byte) (Reply, error) {
	var enc, sig string
	var r Reply
	trimmed := bytes.TrimSpace(body)
	switch {
	case bytes.HasPrefix(trimmed, []byte("{")):
		var env struct {
			Encrypt, MsgSignature, Nonce string
			TimeStamp                    json.RawMessage
		}
		if err := json.Unmarshal(trimmed, &env); err != nil {
			return Reply{}, fmt.Errorf("wechattest: reply is not the JSON envelope: %w", err)
		}
		if _, err := strconv.ParseUint(string(env.TimeStamp), 10, 64); err != nil {
			return Reply{}, fmt.Errorf("wechattest: reply TimeStamp %s is not a JSON number", env.TimeStamp)
		}
		enc, sig, r.TimeStamp, r.Nonce = env.Encrypt, env.MsgSignature, string(env.TimeStamp), env.Nonce
	case bytes.HasPrefix(trimmed, []byte("<")):
		var env struct {
			XMLName                                 xml.Name `xml:"xml"`
			Encrypt, MsgSignature, TimeStamp, Nonce string
		}
		if err := xml.Unmarshal(trimmed, &env); err != nil {
			return Reply{}, fmt.Errorf("wechattest: reply is not the XML envelope: %w", err)
		}
		enc, sig, r.TimeStamp, r.Nonce = env.Encrypt, env.MsgSignature, env.TimeStamp, env.Nonce
	default:
		return Reply{}, errors.New("wechattest: reply is neither XML nor JSON")
	}
	if enc == "" || sig == "" || r.TimeStamp == "" || r.Nonce == "" {
		return Reply{}, errors.New("wechattest: reply envelope lacks Encrypt, MsgSignature, TimeStamp or Nonce")
	}
	if subtle.ConstantTimeCompare([]byte(sig), []byte(pushSign(p.Token, r.TimeStamp, r.Nonce, enc))) != 1 {
		return Reply{}, errors.New("wechattest: reply MsgSignature does not verify")
	}
	msg, err := p.Decrypt(enc)
	if err != nil {
		return Reply{}, err
	}
	r.Message = msg
	return r, nil
}

// Encrypt encrypts msg as WeChat does: AES-256-CBC under
// base64(AESKey+"="), iv = the key's first 16 bytes, over 16 random bytes,
// msg's length (4 bytes, big-endian), msg and AppID, PKCS#7-padded to a
// multiple of 32 bytes; the result in standard base64.
func (p Push) Encrypt(msg []byte) (string, error) {
	block, iv, err := p.cipher()
	if err != nil {
		return "", err
	}
	var plain bytes.Buffer
	var random [16]byte
	rand.Read(random[:])
	plain.Write(random[:])
	binary.Write(&plain, binary.BigEndian, uint32(len(msg)))
	plain.Write(msg)
	plain.WriteString(p.AppID)
	pad := 32 - plain.Len()%32
	plain.Write(bytes.Repeat([]byte{byte(pad)}, pad))
	out := plain.Bytes()
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, out)
	return base64.StdEncoding.EncodeToString(out), nil
}

// Decrypt reverses Encrypt and checks that the trailing appid is AppID.
func (p Push) Decrypt(enc string) ([]byte, error) {
	block, iv, err := p.cipher()
	if err != nil {
		return nil, err
	}
	data, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("wechattest: Encrypt is not base64: %w", err)
	}
	if len(data) == 0 || len(data)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("wechattest: ciphertext of %d bytes", len(data))
	}
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(data, data)
	pad := int(data[len(data)-1])
	if pad == 0 || pad > 32 || pad > len(data) || !bytes.Equal(data[len(data)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		return nil, errors.New("wechattest: bad padding")
	}
	data = data[:len(data)-pad]
	if len(data) < 20 {
		return nil, errors.New("wechattest: plaintext too short")
	}
	n := binary.BigEndian.Uint32(data[16:20])
	rest := data[20:]
	if uint64(n) > uint64(len(rest)) {
		return nil, errors.New("wechattest: length field past the end")
	}
	if string(rest[n:]) != p.AppID {
		return nil, fmt.Errorf("wechattest: trailing appid %q, want %q", rest[n:], p.AppID)
	}
	return rest[:n], nil
}

func (p Push) cipher() (cipher.Block, []byte, error) {
	if len(p.AESKey) != 43 {
		return nil, nil, errors.New("wechattest: AESKey must have 43 characters")
	}
	key, err := base64.StdEncoding.DecodeString(p.AESKey + "=")
	if err != nil || len(key) != 32 {
		return nil, nil, errors.New("wechattest: AESKey is not base64 of 32 bytes")
	}
	block, err := aes.NewCipher(key)
	return block, key[:16], err
}

// pushSign is WeChat's push signature: hex SHA-1 over the sorted,
// concatenated parts.
func pushSign(parts ...string) string {
	s := append([]string(nil), parts...)
	sort.Strings(s)
	h := sha1.New()
	for _, x := range s {
		h.Write([]byte(x))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// peek reads ToUserName and FromUserName from a plaintext message.
func (p Push) peek(plaintext []byte) (to, from string) {
	var m struct{ ToUserName, FromUserName string }
	if p.JSON {
		json.Unmarshal(plaintext, &m)
	} else {
		xml.Unmarshal(plaintext, &m)
	}
	return strings.TrimSpace(m.ToUserName), strings.TrimSpace(m.FromUserName)
}

func cdata(s string) string {
	return "<![CDATA[" + strings.ReplaceAll(s, "]]>", "]]]]><![CDATA[>") + "]]>"
}

func randomDigits(n int) string {
	var b strings.Builder
	for range n {
		d, _ := rand.Int(rand.Reader, big.NewInt(10))
		b.WriteByte(byte('0' + d.Int64()))
	}
	s := b.String()
	if s[0] == '0' {
		s = "1" + s[1:]
	}
	return s
}
