package wechattest

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// field is one top-level field of a pushed message: a string, or a raw
// value (a number, or nested JSON/XML) in the message's own format.
type field struct {
	name      string
	str       string
	jsonRaw   string
	xmlRaw    string
	isNumeric bool
}

func (p Push) message(from, msgType string, extra ...field) []byte {
	to := p.ToUserName
	if to == "" {
		to = "gh_0123456789ab"
	}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	if p.Timestamp != "" {
		now = p.Timestamp
	}
	fields := append([]field{
		{name: "ToUserName", str: to},
		{name: "FromUserName", str: from},
		{name: "CreateTime", str: now, isNumeric: true},
		{name: "MsgType", str: msgType},
	}, extra...)
	var b strings.Builder
	if p.JSON {
		b.WriteByte('{')
		for i, f := range fields {
			if i > 0 {
				b.WriteByte(',')
			}
			name, _ := json.Marshal(f.name)
			b.Write(name)
			b.WriteByte(':')
			switch {
			case f.jsonRaw != "":
				b.WriteString(f.jsonRaw)
			case f.isNumeric:
				b.WriteString(f.str)
			default:
				v, _ := json.Marshal(f.str)
				b.Write(v)
			}
		}
		b.WriteByte('}')
		return []byte(b.String())
	}
	b.WriteString("<xml>")
	for _, f := range fields {
		b.WriteString("<" + f.name + ">")
		switch {
		case f.xmlRaw != "":
			b.WriteString(f.xmlRaw)
		case f.isNumeric:
			b.WriteString(f.str)
		default:
			b.WriteString(cdata(f.str))
		}
		b.WriteString("</" + f.name + ">")
	}
	b.WriteString("</xml>")
	return []byte(b.String())
}

// Text is a customer-service text message from the user from, as WeChat
// pushes it, with a random 19-digit MsgId (a JSON number, too large for a
// float64 to hold exactly).
func (p Push) Text(from, content string) []byte {
	return p.message(from, "text",
		field{name: "Content", str: content},
		field{name: "MsgId", str: "7" + randomDigits(18), isNumeric: true},
	)
}

// Event is an event pushed about the user from. debug_demo,
// wxa_media_check and subscribe_msg_popup_event carry their documented
// fields; any other event name gets the common fields only.
func (p Push) Event(from, event string) []byte {
	extra := []field{{name: "Event", str: event}}
	switch event {
	case "debug_demo":
		extra = append(extra, field{name: "debug_str", str: "hello world"})
	case "wxa_media_check":
		appID := p.AppID
		extra = append(extra,
			field{name: "appid", str: appID},
			field{name: "trace_id", str: randomDigits(8) + "-" + randomDigits(8) + "-" + randomDigits(8)},
			field{name: "version", str: "2", isNumeric: true},
			field{name: "result",
				jsonRaw: `{"suggest":"pass","label":100}`,
				xmlRaw:  `<suggest><![CDATA[pass]]></suggest><label>100</label>`},
		)
	case "subscribe_msg_popup_event":
		extra = []field{{name: "Event", str: event}}
		if p.JSON {
			extra = append(extra, field{name: "List",
				jsonRaw: `[{"TemplateId":"hD-ixGOhYmUfjOnI8MCzQMPshzGVeux_2vzyvQu7O68","SubscribeStatusString":"accept","PopupScene":"0"}]`})
		} else {
			extra = append(extra, field{name: "SubscribeMsgPopupEvent",
				xmlRaw: `<List><TemplateId><![CDATA[hD-ixGOhYmUfjOnI8MCzQMPshzGVeux_2vzyvQu7O68]]></TemplateId><SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString><PopupScene>0</PopupScene></List>`})
		}
	}
	return p.message(from, "event", extra...)
}
