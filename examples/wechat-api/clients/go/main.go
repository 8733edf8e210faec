// Command send sends a subscription message through the wechat_api
// gateway with net/http only: no SDK, no AppSecret, no access token.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
)

func main() {
	gateway := os.Getenv("WECHAT_API")
	if gateway == "" {
		gateway = "http://127.0.0.1:9001"
	}
	openid := "oUser00000000000000000000001"
	if len(os.Args) > 1 {
		openid = os.Args[1]
	}
	msg, _ := json.Marshal(map[string]any{
		"touser":      openid,
		"template_id": "tmpl-1",
		"data":        map[string]any{"thing1": map[string]string{"value": "Your order shipped"}},
	})
	resp, err := http.Post(gateway+"/cgi-bin/message/subscribe/send", "application/json", bytes.NewReader(msg))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer resp.Body.Close()
	var answer struct {
		ErrCode int    `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
		MsgID   int64  `json:"msgid"`
	}
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &answer); err != nil {
		fmt.Fprintf(os.Stderr, "%d %s\n", resp.StatusCode, body) // a gateway error: {"error", "message"}
		os.Exit(1)
	}
	fmt.Printf("%d errcode=%d errmsg=%s msgid=%d\n", resp.StatusCode, answer.ErrCode, answer.ErrMsg, answer.MsgID)
}
