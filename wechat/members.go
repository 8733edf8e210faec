package wechat

import (
	"bytes"
	"encoding/json"
	"unicode"
	"unicode/utf8"
)

// RepeatsMember reports whether an object anywhere in the JSON text raw
// gives a member twice, names compared as encoding/json matches them to
// struct fields (case-insensitively), which keeps the last one. WeChat
// never repeats a member, in an API answer, a push or a pay notification;
// a text that does was made or altered by someone else (an egress proxy,
// a hostile api_base, whoever holds a push's or merchant's key), and
// which copy counts would be each reader's guess. Malformed JSON is left
// to the decoder: it reports false.
func RepeatsMember(raw []byte) bool {
	type container struct {
		names    map[string]bool // nil for an array
		wantName bool            // an object's next token is a member name
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	var open []*container
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			open = open[:len(open)-1]
			continue
		}
		if n := len(open); n > 0 && open[n-1].names != nil {
			top := open[n-1]
			if top.wantName {
				name := foldName(tok.(string))
				if top.names[name] {
					return true
				}
				top.names[name] = true
				top.wantName = false
				continue
			}
			top.wantName = true // after this value, the next member's name
		}
		switch tok {
		case json.Delim('{'):
			open = append(open, &container{names: map[string]bool{}, wantName: true})
		case json.Delim('['):
			open = append(open, &container{})
		}
	}
}

// foldName folds a member name as encoding/json does when it matches
// names to fields: ASCII letters to upper case, other runes to the
// smallest rune of their case-folding orbit (the Kelvin sign K to K).
func foldName(s string) string {
	var b []byte
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			b = append(b, c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		b = utf8.AppendRune(b, foldRune(r))
		i += n
	}
	return string(b)
}

// foldRune is the smallest rune of r's case-folding orbit.
func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}
