package apierr

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// Errors of WalkObject.
var (
	ErrNotObject = errors.New("not a JSON object")
	ErrTrailing  = errors.New("more than one JSON value")
)

// FieldError is a member WalkObject refuses: given twice, or (from the
// member function) spelled in another case than a name it takes, or of the
// wrong type.
type FieldError struct {
	Name     string
	Twice    bool
	Miscased string // the name it should have been
}

// Error is the sentence an answer's message gives.
func (e *FieldError) Error() string {
	switch {
	case e.Twice:
		return "The field " + e.Name + " is given twice."
	case e.Miscased != "":
		return "The field " + e.Name + " must be spelled " + e.Miscased + "."
	}
	return "The field " + e.Name + " must be a string."
}

// WalkObject reads body as exactly one JSON object and calls member for
// each of its members in order, with dec positioned at the value; member
// must read the value (DecodeString, or SkipValue for a name it does not
// take). A name given twice is refused rather than resolved: encoding/json
// would keep the last, and what this module and what another reader of the
// same body take must never differ. Names are not folded: encoding/json
// would also take "CODE" for code.
func WalkObject(body []byte, member func(name string, dec *json.Decoder) error) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ErrNotObject
	}
	seen := make(map[string]bool, 8)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ErrNotObject
		}
		name := tok.(string) // object keys are always strings
		if seen[name] {
			return &FieldError{Name: name, Twice: true}
		}
		seen[name] = true
		if err := member(name, dec); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return ErrNotObject
	}
	if _, err := dec.Token(); err != io.EOF {
		return ErrTrailing
	}
	return nil
}

// DecodeString reads the member's value into dst, which must be a string.
func DecodeString(name string, dec *json.Decoder, dst *string) error {
	if err := dec.Decode(dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return &FieldError{Name: name}
		}
		return ErrNotObject
	}
	return nil
}

// SkipValue reads past a member's value.
func SkipValue(dec *json.Decoder) error {
	var skip json.RawMessage
	if dec.Decode(&skip) != nil {
		return ErrNotObject
	}
	return nil
}
