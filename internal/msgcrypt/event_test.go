package msgcrypt

import (
	"errors"
	"testing"
)

func TestParseEventAndID(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		format     Format
		want       Event
		id         string
	}{
		{
			name:   "XML text message: MsgId of 19 digits",
			body:   "<xml><ToUserName><![CDATA[gh_1]]></ToUserName>\n<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n<CreateTime>1409735668</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[abcdteT]]></Content>\n<MsgId>6054768590064713728</MsgId>\n</xml>",
			format: XML,
			want:   Event{FromUserName: "oyORnuP8q7ou2gfYjqLzSIWZf0rs", MsgID: "6054768590064713728", CreateTime: "1409735668"},
			id:     "6054768590064713728",
		},
		{
			// 7345678901234567891 is not representable in a float64; read
			// through one it would come back as 7345678901234567168.
			name:   "JSON text message: MsgId number kept digit for digit",
			body:   `{"ToUserName":"gh_1","FromUserName":"o1","CreateTime":1714112445,"MsgType":"text","Content":"hi","MsgId":7345678901234567891}`,
			format: JSON,
			want:   Event{FromUserName: "o1", MsgID: "7345678901234567891", CreateTime: "1714112445"},
			id:     "7345678901234567891",
		},
		{
			name:   "JSON MsgId as a string (cloud functions)",
			body:   `{"FromUserName":"o1","MsgId":"49d72d67b16d115e7935ac386f2f0fa41535298877_1555684067","CreateTime":1555684067}`,
			format: JSON,
			want:   Event{FromUserName: "o1", MsgID: "49d72d67b16d115e7935ac386f2f0fa41535298877_1555684067", CreateTime: "1555684067"},
			id:     "49d72d67b16d115e7935ac386f2f0fa41535298877_1555684067",
		},
		{
			name:   "JSON event without MsgId",
			body:   `{"ToUserName":"gh_97417a04a28d","FromUserName":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY","CreateTime":1714112445,"MsgType":"event","Event":"debug_demo","debug_str":"hello world"}`,
			format: JSON,
			want:   Event{FromUserName: "o9AgO5Kd5ggOC-bXrbNODIiE3bGY", CreateTime: "1714112445", Event: "debug_demo"},
			id:     "o9AgO5Kd5ggOC-bXrbNODIiE3bGY:1714112445:debug_demo",
		},
		{
			name:   "JSON media check verdict: trace_id appended",
			body:   `{"ToUserName":"gh_1","FromUserName":"o1","CreateTime":1626959646,"MsgType":"event","Event":"wxa_media_check","appid":"wx1","trace_id":"60f96f1d-3845297a-1976a3ae","version":2,"detail":[{"strategy":"content_model","errcode":0}],"errcode":0,"errmsg":"ok","result":{"suggest":"pass","label":100}}`,
			format: JSON,
			want:   Event{FromUserName: "o1", CreateTime: "1626959646", Event: "wxa_media_check", TraceID: "60f96f1d-3845297a-1976a3ae"},
			id:     "o1:1626959646:wxa_media_check:60f96f1d-3845297a-1976a3ae",
		},
		{
			name:   "XML event with nested List: only top-level fields read",
			body:   `<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName><CreateTime>1610969440</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe_msg_popup_event]]></Event><SubscribeMsgPopupEvent><List><TemplateId><![CDATA[T1]]></TemplateId><Event>inner</Event><SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString><PopupScene>2</PopupScene></List></SubscribeMsgPopupEvent></xml>`,
			format: XML,
			want:   Event{FromUserName: "o1", CreateTime: "1610969440", Event: "subscribe_msg_popup_event"},
			id:     "o1:1610969440:subscribe_msg_popup_event",
		},
		{
			name:   "XML media check with trace_id",
			body:   `<xml><FromUserName><![CDATA[o1]]></FromUserName><CreateTime>1626959646</CreateTime><Event><![CDATA[wxa_media_check]]></Event><trace_id><![CDATA[60f96f1d-3845297a-1976a3ae]]></trace_id></xml>`,
			format: XML,
			want:   Event{FromUserName: "o1", CreateTime: "1626959646", Event: "wxa_media_check", TraceID: "60f96f1d-3845297a-1976a3ae"},
			id:     "o1:1626959646:wxa_media_check:60f96f1d-3845297a-1976a3ae",
		},
		{
			// WeChat's sample; two template messages to one user in one
			// second differ only in MsgID.
			name:   "XML template job finish: its MsgID is the id",
			body:   "<xml>\n<ToUserName><![CDATA[gh_7f083739789a]]></ToUserName>\n<FromUserName><![CDATA[oia2TjuEGTNoeX76QEjQNrcURxG8]]></FromUserName>\n<CreateTime>1395658920</CreateTime>\n<MsgType><![CDATA[event]]></MsgType>\n<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event>\n<MsgID>200163836</MsgID>\n<Status><![CDATA[success]]></Status>\n</xml>",
			format: XML,
			want:   Event{FromUserName: "oia2TjuEGTNoeX76QEjQNrcURxG8", JobMsgID: "200163836", CreateTime: "1395658920", Event: "TEMPLATESENDJOBFINISH"},
			id:     "200163836",
		},
		{
			name:   "JSON mass send job finish: its MsgID is the id",
			body:   `{"ToUserName":"gh_1","FromUserName":"o1","CreateTime":1650896441,"MsgType":"event","Event":"MASSSENDJOBFINISH","MsgID":1000000003,"Status":"send success"}`,
			format: JSON,
			want:   Event{FromUserName: "o1", JobMsgID: "1000000003", CreateTime: "1650896441", Event: "MASSSENDJOBFINISH"},
			id:     "1000000003",
		},
		{
			name:   "Cloud Hosting path check: nothing to identify",
			body:   `{"action":"CheckContainerPath"}`,
			format: JSON,
			id:     "",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, f, err := ParseEvent([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if f != tc.format || got != tc.want {
				t.Fatalf("got %+v (%v), want %+v (%v)", got, f, tc.want, tc.format)
			}
			if id := got.ID(); id != tc.id {
				t.Fatalf("ID = %q, want %q", id, tc.id)
			}
		})
	}
}

func TestParseEventRefusesNonMessages(t *testing.T) {
	for _, body := range []string{
		``, `success`, `<xml><MsgId>1`, `<xml><MsgID>1</MsgID><MsgID>2</MsgID></xml>`,
		`<xml><MsgId>1</MsgId></xml><FromUserName>oB</FromUserName>`, `<xml><MsgId>1</MsgId></xml>x`, `<root><MsgId>1</MsgId></root>`, `{"MsgId":`, `{"MsgId":{"a":1}}`, `{"FromUserName":["o1"]}`, `{"CreateTime":true}`, `[]`,
	} {
		if _, _, err := ParseEvent([]byte(body)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: err = %v, want ErrMalformed", body, err)
		}
	}
}
