package msgcrypt

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"strings"
)

// Event holds the fields of a decrypted push that its delivery needs. All
// are strings as they appear in the message: MsgId has 19 digits and would
// lose its last ones in a float64.
type Event struct {
	FromUserName string
	MsgID        string
	// JobMsgID is the MsgID, so spelled, of a template or mass send job's
	// finish event (TEMPLATESENDJOBFINISH, MASSSENDJOBFINISH): the id of
	// the message the job sent, which WeChat's SDKs read as its MsgId.
	JobMsgID   string
	CreateTime string
	Event      string
	TraceID    string
}

// ParseEvent reads those fields from a plaintext push, XML or JSON. Any
// field may be absent; a body that is neither format, XML that is not one
// <xml> element (another root, anything but white space and comments
// after it), or XML that gives one of the fields twice, is ErrMalformed.
func ParseEvent(plaintext []byte) (Event, Format, error) {
	f, err := Sniff(plaintext)
	if err != nil {
		return Event{}, 0, err
	}
	if f == XML {
		var x struct {
			XMLName      xml.Name
			FromUserName string `xml:"FromUserName"`
			MsgID        string `xml:"MsgId"`
			JobMsgID     string `xml:"MsgID"`
			CreateTime   string `xml:"CreateTime"`
			Event        string `xml:"Event"`
			TraceID      string `xml:"trace_id"`
		}
		dec := xml.NewDecoder(bytes.NewReader(plaintext))
		if err := dec.Decode(&x); err != nil || x.XMLName.Local != "xml" || !xmlEnds(dec) || repeatsField(plaintext) {
			return Event{}, 0, ErrMalformed
		}
		return Event{
			FromUserName: strings.TrimSpace(x.FromUserName),
			MsgID:        strings.TrimSpace(x.MsgID),
			JobMsgID:     strings.TrimSpace(x.JobMsgID),
			CreateTime:   strings.TrimSpace(x.CreateTime),
			Event:        strings.TrimSpace(x.Event),
			TraceID:      strings.TrimSpace(x.TraceID),
		}, XML, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(plaintext, &m); err != nil {
		return Event{}, 0, ErrMalformed
	}
	var e Event
	for _, fld := range []struct {
		key string
		dst *string
	}{
		{"FromUserName", &e.FromUserName},
		{"MsgId", &e.MsgID},
		{"MsgID", &e.JobMsgID},
		{"CreateTime", &e.CreateTime},
		{"Event", &e.Event},
		{"trace_id", &e.TraceID},
	} {
		if *fld.dst, err = jsonScalar(m[fld.key]); err != nil {
			return Event{}, 0, err
		}
	}
	return e, JSON, nil
}

// repeatsField reports whether the root element of the XML text x holds
// one of the event's fields twice. WeChat never does; encoding/xml keeps
// the last, and an upstream reading the first would see another sender
// than X-WX-OPENID names.
func repeatsField(x []byte) bool {
	d := xml.NewDecoder(bytes.NewReader(x))
	seen := map[string]bool{}
	depth := 0
	for {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth != 2 {
				continue
			}
			switch n := t.Name.Local; n {
			case "FromUserName", "MsgId", "MsgID", "CreateTime", "Event", "trace_id":
				if seen[n] {
					return true
				}
				seen[n] = true
			}
		case xml.EndElement:
			depth--
		}
	}
}

// jsonScalar reads a JSON string or number as the text it is written with,
// so that 7345678901234567890 stays exactly that. Absent or null is "";
// an object or array where a scalar belongs is ErrMalformed.
func jsonScalar(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	switch c := raw[0]; {
	case c == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", ErrMalformed
		}
		return s, nil
	case c == '-' || (c >= '0' && c <= '9'):
		// json.Unmarshal has validated the whole document, so raw is a
		// well-formed number literal.
		return string(raw), nil
	}
	return "", ErrMalformed
}

// ID is the event's stable id, the upstream's idempotency key: MsgId when
// present (a job finish event's MsgID), else FromUserName:CreateTime:Event,
// with :trace_id appended when present. Two template messages sent to one
// user in one second finish in two events that differ only in MsgID. It
// is "" when the message carries none of these.
func (e Event) ID() string {
	if e.MsgID != "" {
		return e.MsgID
	}
	if e.JobMsgID != "" {
		return e.JobMsgID
	}
	if e.FromUserName == "" && e.CreateTime == "" && e.Event == "" && e.TraceID == "" {
		return ""
	}
	id := e.FromUserName + ":" + e.CreateTime + ":" + e.Event
	if e.TraceID != "" {
		id += ":" + e.TraceID
	}
	return id
}
