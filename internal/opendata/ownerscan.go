package opendata

import (
	"encoding/json"
	"unicode"
	"unicode/utf8"
)

// This file checks decrypted open data without encoding/json's reflection
// or a generic map, which cost more than the decryption itself. scanOwner
// reads the plaintext once: it checks that the whole of it is one valid
// JSON object and picks out the two things that say whose data it is, the
// top-level openId and watermark.appid.
//
// It reads them as json.Unmarshal reads the fields of a struct: keys match
// case-insensitively (with Unicode folding, after unescaping), the last of
// repeated keys wins, a repeated watermark merges into the one before, null
// leaves appid as it was, a value of another type is an error, strings are
// unescaped (invalid UTF-8 reads as U+FFFD), and nesting deeper than
// encoding/json's limit is invalid. One thing differs from a struct of
// pointers: an openId or a watermark that is null is present, with no
// value, so it matches no openid and no app (where one is
// present it must match). ownerscan_test.go fuzzes it against encoding/json
// with that reading.

// maxJSONDepth is encoding/json's nesting limit, so both agree on what is
// valid.
const maxJSONDepth = 10000

// jsonString is a JSON string literal of the input, quotes included. It is
// unescaped only when compared or read, and then without allocating when it
// has no escape and no byte outside printable ASCII (every real openid and
// appid).
type jsonString struct {
	raw   []byte
	plain bool // no escape, only printable ASCII: the content is the value
}

// value returns the string the literal stands for.
func (s jsonString) value() string {
	if s.raw == nil {
		return ""
	}
	if s.plain {
		return string(s.raw[1 : len(s.raw)-1])
	}
	var v string
	if json.Unmarshal(s.raw, &v) != nil {
		return "" // not reached: the literal was checked when scanned
	}
	return v
}

// equals reports whether the literal stands for v.
func (s jsonString) equals(v string) bool {
	if s.plain {
		return string(s.raw[1:len(s.raw)-1]) == v
	}
	return s.value() == v
}

// is reports whether the literal, as an object key, names the field whose
// folded name is folded (upper-case ASCII), as encoding/json matches keys
// to struct fields.
func (s jsonString) is(folded string) bool {
	if !s.plain {
		return foldName(s.value()) == folded
	}
	k := s.raw[1 : len(s.raw)-1]
	if len(k) != len(folded) {
		return false
	}
	for i, c := range k {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != folded[i] {
			return false
		}
	}
	return true
}

// foldName folds a key as encoding/json does: ASCII letters to upper case,
// any other rune to the smallest rune of its case-folding orbit (so the
// Kelvin sign matches 'k').
func foldName(s string) string {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r < utf8.RuneSelf {
			c := byte(r)
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			continue
		}
		for {
			r2 := unicode.SimpleFold(r)
			if r2 <= r {
				r = r2
				break
			}
			r = r2
		}
		out = utf8.AppendRune(out, r)
	}
	return string(out)
}

// ownerFields are what decrypted open data says about whose it is.
type ownerFields struct {
	hasOpenID     bool
	openIDNull    bool // present as null: matches no openid
	openID        jsonString
	hasWatermark  bool
	watermarkNull bool // present as null: matches no app
	appID         jsonString
}

// scanOwner checks that plain is exactly one JSON object (surrounded by
// optional whitespace) and returns its openId and watermark.appid. ok is
// false when plain is not a valid JSON object or one of those fields has a
// type that is neither a string (an object for watermark) nor null.
func scanOwner(plain []byte) (o ownerFields, ok bool) {
	s := ownerScanner{b: plain}
	s.space()
	if !s.peek('{') || !s.object(objectTop, &o) {
		return ownerFields{}, false
	}
	s.space()
	if s.i != len(s.b) {
		return ownerFields{}, false
	}
	return o, true
}

type ownerScanner struct {
	b     []byte
	i     int
	depth int
}

// Which object is being read, which says which keys matter.
const (
	objectOther = iota
	objectTop
	objectWatermark
)

func (s *ownerScanner) peek(c byte) bool { return s.i < len(s.b) && s.b[s.i] == c }

func (s *ownerScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// object reads an object whose '{' is at s.i. For the top-level object and
// the watermark it records the fields that matter in o.
func (s *ownerScanner) object(kind int, o *ownerFields) bool {
	if s.depth++; s.depth > maxJSONDepth {
		return false
	}
	s.i++ // '{'
	s.space()
	if s.peek('}') {
		s.i++
		s.depth--
		return true
	}
	for {
		if !s.peek('"') {
			return false
		}
		key, ok := s.string()
		if !ok {
			return false
		}
		s.space()
		if !s.peek(':') {
			return false
		}
		s.i++
		s.space()
		if !s.member(kind, key, o) {
			return false
		}
		s.space()
		if s.peek(',') {
			s.i++
			s.space()
			continue
		}
		if s.peek('}') {
			s.i++
			s.depth--
			return true
		}
		return false
	}
}

// member reads the value of key in an object of the given kind.
func (s *ownerScanner) member(kind int, key jsonString, o *ownerFields) bool {
	switch {
	case kind == objectTop && key.is("OPENID"):
		switch {
		case s.peek('"'):
			v, ok := s.string()
			o.hasOpenID, o.openIDNull, o.openID = true, false, v
			return ok
		case s.literal("null"):
			o.hasOpenID, o.openIDNull, o.openID = true, true, jsonString{}
			return true
		}
		return false // another type: json.Unmarshal fails
	case kind == objectTop && key.is("WATERMARK"):
		switch {
		case s.peek('{'):
			// A repeated watermark merges into the one before.
			o.hasWatermark, o.watermarkNull = true, false
			return s.object(objectWatermark, o)
		case s.literal("null"):
			o.hasWatermark, o.watermarkNull, o.appID = true, true, jsonString{}
			return true
		}
		return false
	case kind == objectWatermark && key.is("APPID"):
		switch {
		case s.peek('"'):
			v, ok := s.string()
			o.appID = v
			return ok
		case s.literal("null"):
			return true // null leaves a string field as it was
		}
		return false
	}
	return s.value()
}

// value reads any JSON value.
func (s *ownerScanner) value() bool {
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(objectOther, nil)
	case c == '[':
		return s.array()
	case c == '"':
		_, ok := s.string()
		return ok
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	}
	return s.literal("true") || s.literal("false") || s.literal("null")
}

func (s *ownerScanner) array() bool {
	if s.depth++; s.depth > maxJSONDepth {
		return false
	}
	s.i++ // '['
	s.space()
	if s.peek(']') {
		s.i++
		s.depth--
		return true
	}
	for {
		if !s.value() {
			return false
		}
		s.space()
		if s.peek(',') {
			s.i++
			s.space()
			continue
		}
		if s.peek(']') {
			s.i++
			s.depth--
			return true
		}
		return false
	}
}

// stringByte marks the bytes that end the fast loop over a string's
// content: the quote, the backslash, control characters (invalid there)
// and non-ASCII bytes (which make the string not plain).
var stringByte = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	for c := 0x80; c < 0x100; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// string reads a string whose opening quote is at s.i.
func (s *ownerScanner) string() (jsonString, bool) {
	start := s.i
	s.i++
	plain := true
	for s.i < len(s.b) {
		c := s.b[s.i]
		if !stringByte[c] {
			s.i++
			continue
		}
		switch {
		case c == '"':
			s.i++
			return jsonString{raw: s.b[start:s.i], plain: plain}, true
		case c < 0x20:
			return jsonString{}, false
		case c >= 0x80:
			// encoding/json accepts invalid UTF-8 in strings (and reads
			// it as U+FFFD), so any byte is allowed here.
			plain = false
			s.i++
		default: // '\\'
			plain = false
			if !s.escape() {
				return jsonString{}, false
			}
		}
	}
	return jsonString{}, false
}

// escape reads an escape sequence whose backslash is at s.i.
func (s *ownerScanner) escape() bool {
	if s.i+1 >= len(s.b) {
		return false
	}
	switch s.b[s.i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.i += 2
		return true
	case 'u':
		if s.i+6 > len(s.b) {
			return false
		}
		for _, c := range s.b[s.i+2 : s.i+6] {
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
		s.i += 6
		return true
	}
	return false
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *ownerScanner) number() bool {
	if s.peek('-') {
		s.i++
	}
	switch {
	case s.peek('0'):
		s.i++
	case s.i < len(s.b) && '1' <= s.b[s.i] && s.b[s.i] <= '9':
		s.digits()
	default:
		return false
	}
	if s.peek('.') {
		s.i++
		if !s.digits() {
			return false
		}
	}
	if s.peek('e') || s.peek('E') {
		s.i++
		if s.peek('+') || s.peek('-') {
			s.i++
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// digits reads one or more decimal digits.
func (s *ownerScanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

// literal reads lit if it is next.
func (s *ownerScanner) literal(lit string) bool {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}
