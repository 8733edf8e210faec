package msgcrypt

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"strings"
)

// Format is a push's data format, as chosen in the console.
type Format int

const (
	XML Format = iota
	JSON
)

func (f Format) String() string {
	if f == JSON {
		return "json"
	}
	return "xml"
}

// Sniff tells a body's format by its first non-space byte: '<' is XML,
// '{' is JSON; anything else is ErrMalformed.
func Sniff(body []byte) (Format, error) {
	b := bytes.TrimLeft(body, " \t\r\n")
	switch {
	case len(b) > 0 && b[0] == '<':
		return XML, nil
	case len(b) > 0 && b[0] == '{':
		return JSON, nil
	}
	return 0, ErrMalformed
}

// Envelope is what a push body carries around its ciphertext. Encrypt is
// empty in plain mode; in compatibility mode the plaintext fields beside it
// are not read here, because only the decrypted copy is to be trusted.
type Envelope struct {
	Format     Format
	ToUserName string
	Encrypt    string
}

// ParseEnvelope reads an XML (<xml><ToUserName/><Encrypt/></xml>) or JSON
// ({"ToUserName","Encrypt"}) push body. A body that is neither is
// ErrMalformed.
func ParseEnvelope(body []byte) (Envelope, error) {
	f, err := Sniff(body)
	if err != nil {
		return Envelope{}, err
	}
	env := Envelope{Format: f}
	if f == XML {
		var x struct {
			XMLName    xml.Name
			ToUserName []string `xml:"ToUserName"`
			Encrypt    []string `xml:"Encrypt"`
		}
		dec := xml.NewDecoder(bytes.NewReader(body))
		if err := dec.Decode(&x); err != nil || x.XMLName.Local != "xml" || len(x.ToUserName) > 1 || len(x.Encrypt) > 1 || !xmlEnds(dec) {
			return Envelope{}, ErrMalformed
		}
		if len(x.ToUserName) == 1 {
			env.ToUserName = strings.TrimSpace(x.ToUserName[0])
		}
		if len(x.Encrypt) == 1 {
			env.Encrypt = strings.TrimSpace(x.Encrypt[0])
		}
		return env, nil
	}
	// One pass over the object: a member given twice, in any spelling,
	// is refused (json.Unmarshal keeps the last, another reader the
	// first), as is anything after the object.
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return Envelope{}, ErrMalformed
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		name, ok := tok.(string)
		if err != nil || !ok || seen[name] {
			return Envelope{}, ErrMalformed
		}
		// encoding/json matches names case-insensitively: another
		// spelling of a member read here is that member given twice.
		for _, m := range [...]string{"ToUserName", "Encrypt"} {
			if name != m && strings.EqualFold(name, m) {
				return Envelope{}, ErrMalformed
			}
		}
		seen[name] = true
		var raw json.RawMessage
		if dec.Decode(&raw) != nil {
			return Envelope{}, ErrMalformed
		}
		switch name {
		case "ToUserName":
			env.ToUserName, err = jsonString(raw)
		case "Encrypt":
			env.Encrypt, err = jsonString(raw)
		}
		if err != nil {
			return Envelope{}, err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return Envelope{}, ErrMalformed
	}
	if _, err := dec.Token(); err != io.EOF {
		return Envelope{}, ErrMalformed
	}
	return env, nil
}

// xmlEnds reports whether nothing but white space and comments follows
// the root element dec has read: an envelope is one <xml> element, and
// which of two a reader takes is its guess.
func xmlEnds(dec *xml.Decoder) bool {
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return false
			}
		case xml.Comment:
		default:
			return false
		}
	}
}

// jsonString reads an optional JSON string; absent or null is "".
func jsonString(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", ErrMalformed
	}
	return s, nil
}

// Seal encrypts msg as a passive reply and wraps it in the envelope of the
// push's format, signed with MsgSignature over token, timestamp, nonce and
// Encrypt. nonce should echo the push's; timestamp must be decimal digits,
// because the JSON envelope carries it as a number.
func (c *Crypter) Seal(msg []byte, timestamp, nonce string, f Format) ([]byte, error) {
	if !isDigits(timestamp) {
		return nil, errors.New("msgcrypt: reply timestamp must be decimal digits")
	}
	if nonce == "" || strings.Contains(nonce, "]]>") {
		return nil, errors.New("msgcrypt: reply nonce is empty or cannot be written in CDATA")
	}
	enc, err := c.Encrypt(msg)
	if err != nil {
		return nil, err
	}
	return envelope(enc, Signature(c.token, timestamp, nonce, enc), timestamp, nonce, f)
}

func envelope(enc, sig, timestamp, nonce string, f Format) ([]byte, error) {
	if f == JSON {
		type reply struct {
			Encrypt      string
			MsgSignature string
			TimeStamp    json.Number
			Nonce        string
		}
		return json.Marshal(reply{enc, sig, json.Number(timestamp), nonce})
	}
	var b strings.Builder
	b.WriteString("<xml><Encrypt><![CDATA[")
	b.WriteString(enc)
	b.WriteString("]]></Encrypt><MsgSignature><![CDATA[")
	b.WriteString(sig)
	b.WriteString("]]></MsgSignature><TimeStamp>")
	b.WriteString(timestamp)
	b.WriteString("</TimeStamp><Nonce><![CDATA[")
	b.WriteString(nonce)
	b.WriteString("]]></Nonce></xml>")
	return []byte(b.String()), nil
}

func isDigits(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
