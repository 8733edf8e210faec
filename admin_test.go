package wechatauth

import (
	"strings"
	"testing"
)

func TestUserRequestTakesExactNamesOnce(t *testing.T) {
	var ok userRequest
	if aerr := ok.parse([]byte(`{"appid":"wxa","openid":"o1","until":"2030-01-02T15:04:05Z","reason":"fraud","note":"ignored"}`)); aerr != nil {
		t.Fatalf("a good body: %v", aerr.message)
	}
	if ok.AppID != "wxa" || ok.OpenID != "o1" || ok.Until == "" || ok.Reason != "fraud" {
		t.Fatalf("read %+v", ok)
	}
	for body, want := range map[string]string{
		`{"appid":"wxa","openid":"o1","openid":"o2"}`: "openid is given twice",
		`{"appid":"wxa","OpenID":"o1"}`:               "OpenID must be spelled openid",
		`{"APPID":"wxa","openid":"o1"}`:               "APPID must be spelled appid",
		`{"appid":"wxa","openid":1}`:                  "openid must be a string",
		`{"appid":"wxa","openid":"o1"}{}`:             "must be a JSON object",
		`["wxa","o1"]`:                                "must be a JSON object",
		`{"appid":"wxa",`:                             "must be a JSON object",
	} {
		var req userRequest
		aerr := req.parse([]byte(body))
		if aerr == nil || aerr.status != 400 || !strings.Contains(aerr.message, want) {
			t.Errorf("%s: %+v, want 400 saying %q", body, aerr, want)
		}
	}
}
