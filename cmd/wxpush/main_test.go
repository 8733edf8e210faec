package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/caddy-wechat/wechatauth/internal/msgcrypt"
)

const (
	token = "T0ken_for_push"
	key   = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
	appID = "wx1234567890abcdef"
)

// receiver is a push URL judged by msgcrypt, not by wechattest: it
// answers the URL check, verifies and decrypts pushes, records the
// plaintext, and in safe mode answers with an encrypted passive reply.
type receiver struct {
	mu  sync.Mutex
	got [][]byte
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := msgcrypt.New(token, key, appID)
	if err != nil {
		panic(err)
	}
	q := r.URL.Query()
	if !c.VerifyURL(q.Get("signature"), q.Get("timestamp"), q.Get("nonce")) {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	if r.Method == http.MethodGet {
		io.WriteString(w, q.Get("echostr"))
		return
	}
	body, _ := io.ReadAll(r.Body)
	env, err := msgcrypt.ParseEnvelope(body)
	if err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	msg := body
	if q.Get("encrypt_type") == "aes" {
		if msg, err = c.Open(q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"), env.Encrypt); err != nil {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
	}
	rc.mu.Lock()
	rc.got = append(rc.got, msg)
	rc.mu.Unlock()
	if q.Get("encrypt_type") != "aes" {
		io.WriteString(w, "success")
		return
	}
	reply, err := c.Seal([]byte("<xml><Content><![CDATA[got it]]></Content></xml>"), "1713424427", q.Get("nonce"), env.Format)
	if err != nil {
		panic(err)
	}
	w.Write(reply)
}

func (rc *receiver) last(t *testing.T) string {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.got) == 0 {
		t.Fatal("nothing received")
	}
	return string(rc.got[len(rc.got)-1])
}

func wxpush(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestWxpushSendsWhatTheReceiverVerifies(t *testing.T) {
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	base := []string{"-url", srv.URL + "/wechat/push", "-token", token, "-aes-key", key, "-appid", appID}

	code, out, errOut := wxpush(t, append(base, "-text", "hello")...)
	if code != 0 || !strings.Contains(out, "200 OK") || !strings.Contains(out, "got it") || !strings.Contains(out, "MsgSignature verified") {
		t.Fatalf("safe XML text: code %d\n%s\n%s", code, out, errOut)
	}
	if m := rc.last(t); !strings.Contains(m, "<Content><![CDATA[hello]]></Content>") || !strings.Contains(m, "<MsgId>") {
		t.Fatalf("receiver got %s", m)
	}

	code, out, _ = wxpush(t, append(base, "-json", "-event", "subscribe_msg_popup_event")...)
	if code != 0 || !strings.Contains(out, "got it") {
		t.Fatalf("safe JSON event: code %d\n%s", code, out)
	}
	if m := rc.last(t); !strings.HasPrefix(m, "{") || !strings.Contains(m, `"Event":"subscribe_msg_popup_event"`) {
		t.Fatalf("receiver got %s", m)
	}

	code, out, _ = wxpush(t, append(base, "-compat", "-event", "wxa_media_check")...)
	if code != 0 || !strings.Contains(rc.last(t), "wxa_media_check") {
		t.Fatalf("compatibility mode: code %d\n%s", code, out)
	}

	code, out, _ = wxpush(t, "-url", srv.URL, "-token", token, "-plain")
	if code != 0 || !strings.Contains(out, "success") || !strings.Contains(rc.last(t), "debug_demo") {
		t.Fatalf("plain debug_demo: code %d\n%s", code, out)
	}

	file := filepath.Join(t.TempDir(), "body.json")
	body := `{"ToUserName":"gh_1","FromUserName":"o1","CreateTime":1714112445,"MsgType":"event","Event":"user_enter_tempsession","SessionFrom":"x"}`
	os.WriteFile(file, []byte(body+"\n"), 0o600)
	code, out, _ = wxpush(t, append(base, "-file", file)...)
	if code != 0 || rc.last(t) != body {
		t.Fatalf("-file: code %d, receiver got %q\n%s", code, rc.last(t), out)
	}

	code, out, _ = wxpush(t, "-url", srv.URL, "-token", token, "-check")
	if code != 0 || !strings.Contains(out, "URL check passed") {
		t.Fatalf("-check: code %d\n%s", code, out)
	}
}

func TestWxpushReportsRefusals(t *testing.T) {
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	code, out, _ := wxpush(t, "-url", srv.URL, "-token", "other", "-aes-key", key, "-appid", appID, "-text", "hi")
	if code != 1 || !strings.Contains(out, "403") {
		t.Fatalf("wrong token: code %d\n%s", code, out)
	}
	code, out, _ = wxpush(t, "-url", srv.URL, "-token", token, "-aes-key", key, "-appid", "wx0000000000000000", "-text", "hi")
	if code != 1 || !strings.Contains(out, "403") {
		t.Fatalf("another appid: code %d\n%s", code, out)
	}
	code, out, _ = wxpush(t, "-url", srv.URL, "-token", "other", "-check")
	if code != 1 || !strings.Contains(out, "URL check failed") {
		t.Fatalf("-check with a wrong token: code %d\n%s", code, out)
	}
}

func TestWxpushUsage(t *testing.T) {
	t.Setenv("WECHAT_PUSH_TOKEN", "")
	t.Setenv("WECHAT_PUSH_AES_KEY", "")
	for _, args := range [][]string{
		{"-token", token},
		{"-url", "http://127.0.0.1:1"},
		{"-url", "http://127.0.0.1:1", "-token", token},
		{"-url", "http://127.0.0.1:1", "-token", token, "-aes-key", key},
		{"-url", "http://127.0.0.1:1", "-token", token, "-plain", "-compat"},
		{"-url", "http://127.0.0.1:1", "-token", token, "-plain", "-text", "a", "-event", "b"},
		{"-url", "http://127.0.0.1:1", "-token", token, "-aes-key", "short", "-appid", appID},
	} {
		code, _, errOut := wxpush(t, args...)
		if code != 2 || errOut == "" {
			t.Errorf("%v: code %d, stderr %q", args, code, errOut)
		}
		if strings.Contains(errOut, key) {
			t.Errorf("%v: stderr shows the key", args)
		}
	}
}
