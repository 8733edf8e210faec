package wechatauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// Errors of walkObject.
var (
	errNotObject = errors.New("not a JSON object")
	errTrailing  = errors.New("more than one JSON value")
)

// fieldError is a member walkObject refuses: given twice, or (from the
// member function) spelled in another case than a name it takes, or of the
// wrong type.
type fieldError struct {
	name     string
	twice    bool
	miscased string // the name it should have been
}

// Error is the sentence an answer's message gives.
func (e *fieldError) Error() string {
	switch {
	case e.twice:
		return "The field " + e.name + " is given twice."
	case e.miscased != "":
		return "The field " + e.name + " must be spelled " + e.miscased + "."
	}
	return "The field " + e.name + " must be a string."
}

// walkObject reads body as exactly one JSON object and calls member for
// each of its members in order, with dec positioned at the value; member
// must read the value (decodeString, or skipValue for a name it does not
// take). A name given twice is refused rather than resolved: encoding/json
// would keep the last, and what this module and what another reader of the
// same body take must never differ. Names are not folded: encoding/json
// would also take "CODE" for code.
func walkObject(body []byte, member func(name string, dec *json.Decoder) error) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return errNotObject
	}
	seen := make(map[string]bool, 8)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return errNotObject
		}
		name := tok.(string) // object keys are always strings
		if seen[name] {
			return &fieldError{name: name, twice: true}
		}
		seen[name] = true
		if err := member(name, dec); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return errNotObject
	}
	if _, err := dec.Token(); err != io.EOF {
		return errTrailing
	}
	return nil
}

// decodeString reads the member's value into dst, which must be a string.
func decodeString(name string, dec *json.Decoder, dst *string) error {
	if err := dec.Decode(dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return &fieldError{name: name}
		}
		return errNotObject
	}
	return nil
}

// skipValue reads past a member's value.
func skipValue(dec *json.Decoder) error {
	var skip json.RawMessage
	if dec.Decode(&skip) != nil {
		return errNotObject
	}
	return nil
}
