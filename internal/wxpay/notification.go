package wxpay

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/wechatpay-apiv3/wechatpay-go/utils"
)

// Resource is the encrypted part of a callback (and of a certificate in
// /v3/certificates).
type Resource struct {
	Algorithm      string `json:"algorithm"`
	Ciphertext     string `json:"ciphertext"`
	AssociatedData string `json:"associated_data"`
	Nonce          string `json:"nonce"`
	OriginalType   string `json:"original_type,omitempty"`
}

// DecryptResource opens r with the APIv3 key (AEAD_AES_256_GCM: the
// 12-byte nonce, associated_data as additional data, ciphertext the base64
// of ciphertext and tag). A failure is an ErrVerification.
func (m *Merchant) DecryptResource(r Resource) ([]byte, error) {
	return decryptResource(m.apiV3Key, r)
}

func decryptResource(key string, r Resource) ([]byte, error) {
	if r.Algorithm != "AEAD_AES_256_GCM" {
		return nil, reasonAlgorithm
	}
	// GCM panics on a nonce of another length: check before the SDK opens.
	if len(r.Nonce) != 12 {
		return nil, reasonNonce
	}
	plaintext, err := utils.DecryptAES256GCM(key, r.AssociatedData, r.Nonce, r.Ciphertext)
	if err != nil {
		return nil, reasonDecrypt
	}
	return []byte(plaintext), nil
}

// Notification is a callback body from WeChat Pay, read but not decrypted.
type Notification struct {
	ID           string
	CreateTime   string
	EventType    string // TRANSACTION.SUCCESS, REFUND.SUCCESS, …
	ResourceType string
	Summary      string
	Resource     Resource
	Decrypted    []byte // the resource decrypted: set by ReadNotification

	body             []byte
	resStart, resEnd int
}

// ParseNotification reads a callback body: a UTF-8 JSON object whose
// resource member is an object. A member given twice is refused, so that
// what is read and what is rewritten are the same; bytes that are not
// UTF-8 too, which encoding/json takes inside strings and a strict reader
// of the delivered body does not. Failures are ErrVerification.
func ParseNotification(body []byte) (*Notification, error) {
	if !utf8.Valid(body) {
		return nil, reasonNotification
	}
	n := &Notification{body: body, resStart: -1}
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, reasonNotification
	}
	seen := make(map[string]bool)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, reasonNotification
		}
		key, ok := t.(string)
		if !ok {
			return nil, reasonNotification
		}
		if seen[key] {
			return nil, reasonDuplicateField
		}
		seen[key] = true
		keyEnd := int(dec.InputOffset())
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, reasonNotification
		}
		var dst *string
		switch key {
		case "id":
			dst = &n.ID
		case "create_time":
			dst = &n.CreateTime
		case "event_type":
			dst = &n.EventType
		case "resource_type":
			dst = &n.ResourceType
		case "summary":
			dst = &n.Summary
		case "resource":
			if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &n.Resource) != nil {
				return nil, reasonNotification
			}
			start := valueStart(body, keyEnd)
			if start < 0 || start+len(raw) > len(body) || !bytes.Equal(body[start:start+len(raw)], raw) {
				return nil, reasonNotification
			}
			n.resStart, n.resEnd = start, start+len(raw)
		}
		if dst != nil && json.Unmarshal(raw, dst) != nil {
			return nil, reasonNotification
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, reasonNotification
	}
	if _, err := dec.Token(); err != io.EOF || n.resStart < 0 {
		return nil, reasonNotification // trailing data, or no resource
	}
	return n, nil
}

// valueStart returns where the value after a member name ending at i
// starts: past blanks, the colon, blanks.
func valueStart(b []byte, i int) int {
	for i < len(b) && isBlank(b[i]) {
		i++
	}
	if i >= len(b) || b[i] != ':' {
		return -1
	}
	i++
	for i < len(b) && isBlank(b[i]) {
		i++
	}
	return i
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// WithResource returns the notification body with the value of resource
// replaced by plaintext (a JSON object, the decrypted resource), every
// other byte as WeChat Pay sent it.
func (n *Notification) WithResource(plaintext []byte) ([]byte, error) {
	p := bytes.TrimSpace(plaintext)
	// json.Valid takes bytes that are not UTF-8 inside strings; strict
	// readers of the delivered body do not.
	if len(p) == 0 || p[0] != '{' || !json.Valid(p) || !utf8.Valid(p) {
		return nil, reasonNotJSON
	}
	out := make([]byte, 0, len(n.body)-(n.resEnd-n.resStart)+len(p))
	out = append(out, n.body[:n.resStart]...)
	out = append(out, p...)
	return append(out, n.body[n.resEnd:]...), nil
}

// OpenNotification verifies a callback (VerifyNotification) and reads it
// (ReadNotification). Every failure is an ErrVerification.
func (m *Merchant) OpenNotification(header http.Header, body []byte, now time.Time) (*Notification, []byte, error) {
	if err := m.VerifyNotification(header, body, now); err != nil {
		return nil, nil, err
	}
	return m.ReadNotification(body)
}

// ReadNotification reads a verified callback, decrypts its resource, and
// returns it with the body to deliver: the notification with resource
// replaced by the decrypted object. Every failure is an ErrVerification.
func (m *Merchant) ReadNotification(body []byte) (*Notification, []byte, error) {
	n, err := ParseNotification(body)
	if err != nil {
		return nil, nil, err
	}
	plaintext, err := m.DecryptResource(n.Resource)
	if err != nil {
		return nil, nil, err
	}
	out, err := n.WithResource(plaintext)
	if err != nil {
		return nil, nil, err
	}
	n.Decrypted = plaintext
	return n, out, nil
}
