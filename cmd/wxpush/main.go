// Command wxpush sends one message push to a running receiver (Caddy's
// wechat_push) the way WeChat's servers do: signed, and in safe or
// compatibility mode encrypted, as XML or JSON. It prints the answer and,
// when the answer is an encrypted passive reply, checks and decrypts it.
//
//	go run ./cmd/wxpush -url http://localhost:8080/wechat/push -token T -aes-key K -appid wx... [-json] [-plain|-compat] [-text hello | -event subscribe_msg_popup_event | -file body.xml] [-check]
//
// The token and key may also come from WECHAT_PUSH_TOKEN and
// WECHAT_PUSH_AES_KEY, which keeps them out of the process list.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the command with its exit code: 0 for a 2xx answer, 1 for any
// other answer or a failed send, 2 for bad usage.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wxpush", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("url", "", "the receiver's push URL, e.g. http://localhost:8080/wechat/push")
	token := fs.String("token", os.Getenv("WECHAT_PUSH_TOKEN"), "the console's Token (default $WECHAT_PUSH_TOKEN)")
	aesKey := fs.String("aes-key", os.Getenv("WECHAT_PUSH_AES_KEY"), "the console's EncodingAESKey, 43 characters (default $WECHAT_PUSH_AES_KEY)")
	appID := fs.String("appid", "", "the app's appid, trailing the encrypted plaintext")
	asJSON := fs.Bool("json", false, "data format JSON instead of XML")
	plain := fs.Bool("plain", false, "plain mode (明文): signed, not encrypted")
	compat := fs.Bool("compat", false, "compatibility mode (兼容): plain fields and Encrypt side by side")
	text := fs.String("text", "", "send a text message with this content")
	event := fs.String("event", "", "send this event, e.g. debug_demo, subscribe_msg_popup_event, wxa_media_check")
	file := fs.String("file", "", "send this file's content as the plaintext message (XML or JSON)")
	from := fs.String("from", "oWXPUSH0000000000000000000000", "the sender's openid (FromUserName)")
	to := fs.String("to", "", "the app's original id (ToUserName), gh_...")
	check := fs.Bool("check", false, "send the console's URL check (GET with echostr) instead of a push")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	usage := func(msg string) int {
		fmt.Fprintln(stderr, "wxpush:", msg)
		return 2
	}
	if *target == "" || *token == "" {
		return usage("-url and -token are required")
	}
	if fs.NArg() > 0 {
		return usage("unexpected arguments: " + fmt.Sprint(fs.Args()))
	}
	p := wechattest.Push{Token: *token, AESKey: *aesKey, AppID: *appID, JSON: *asJSON, ToUserName: *to}
	client := &http.Client{Timeout: *timeout}

	if *check {
		echostr := strconv.FormatInt(time.Now().UnixNano(), 10)
		req, err := p.URLCheck(*target, echostr)
		if err != nil {
			return usage(err.Error())
		}
		status, body, err := send(client, req, stdout)
		if err != nil {
			fmt.Fprintln(stderr, "wxpush:", err)
			return 1
		}
		if status/100 == 2 && string(body) == echostr {
			fmt.Fprintln(stdout, "URL check passed: the answer is the echostr")
			return 0
		}
		fmt.Fprintln(stdout, "URL check failed: the answer is not the echostr")
		return 1
	}

	switch {
	case *plain && *compat:
		return usage("-plain and -compat exclude each other")
	case *plain:
	case *aesKey == "" || *appID == "":
		return usage("safe and compatibility mode need -aes-key and -appid (or -plain)")
	case *compat:
		p.Compat = true
	default:
		p.Safe = true
	}
	var msg []byte
	switch n := btoi(*text != "") + btoi(*event != "") + btoi(*file != ""); {
	case n > 1:
		return usage("give one of -text, -event, -file")
	case *text != "":
		msg = p.Text(*from, *text)
	case *file != "":
		b, err := os.ReadFile(*file)
		if err != nil {
			return usage(err.Error())
		}
		b = bytes.TrimSpace(b)
		p.JSON = bytes.HasPrefix(b, []byte("{"))
		msg = b
	default:
		name := *event
		if name == "" {
			name = "debug_demo"
		}
		msg = p.Event(*from, name)
	}
	req, err := p.Request(*target, msg)
	if err != nil {
		return usage(err.Error())
	}
	fmt.Fprintf(stdout, "POST %s\n%s\n\n", req.URL.Redacted(), msg)
	status, body, err := send(client, req, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "wxpush:", err)
		return 1
	}
	if (p.Safe || p.Compat) && len(bytes.TrimSpace(body)) > 0 && string(body) != "success" {
		if r, err := p.OpenReply(body); err == nil {
			fmt.Fprintf(stdout, "\npassive reply (MsgSignature verified, decrypted):\n%s\n", r.Message)
			if r.Nonce != req.URL.Query().Get("nonce") {
				fmt.Fprintln(stdout, "note: the reply's Nonce does not echo the push's")
			}
		} else {
			fmt.Fprintln(stdout, "\nthe answer is not a valid encrypted reply:", err)
		}
	}
	if status/100 != 2 {
		return 1
	}
	return 0
}

// send does req and prints the status and body.
func send(client *http.Client, req *http.Request, stdout io.Writer) (int, []byte, error) {
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, errors.New("reading the answer: " + err.Error())
	}
	fmt.Fprintf(stdout, "%s\n%s\n", resp.Status, body)
	return resp.StatusCode, body, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
