package outbox

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// An upstream reply over the limit is not passed on cut short (broken XML
// for WeChat): the event counts as delivered, with no reply, and a
// warning without the content is logged.
func TestOversizedReplyIsDeliveredWithoutReply(t *testing.T) {
	for _, size := range []int{maxReply, maxReply + 1} {
		body := "<xml>" + strings.Repeat("A", size-len("<xml></xml>")) + "</xml>"
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(body))
		}))
		log, logs := observedLogger()
		o := New(storageBackend(t).store(t), testConfig(nil, log))
		res := accept(t, o, Event{Kind: "push", ID: "big", To: up.URL, Body: []byte("<xml/>")}, Delivered)
		up.Close()
		if size == maxReply {
			if len(res.Body) != size {
				t.Errorf("a reply of exactly 1 MiB: got %d bytes back", len(res.Body))
			}
			continue
		}
		if len(res.Body) != 0 {
			t.Errorf("an oversized reply came back as %d bytes, want none", len(res.Body))
		}
		warned := logs.FilterMessageSnippet("over 1 MiB").All()
		if len(warned) != 1 {
			t.Fatalf("%d warnings about the oversized reply, want 1", len(warned))
		}
		for _, f := range warned[0].Context {
			if strings.Contains(f.String, "AAAA") {
				t.Error("the warning holds the reply's content")
			}
		}
	}
}
