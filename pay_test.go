package wechatauth

import (
	"encoding/json"
	"strings"
	"testing"
)

// The merchant block and pay_api_base become apps.wechat's merchants and
// pay_api_base; the pay directives fill their JSON fields and order
// themselves: wechat_pay_notify before wechat_auth.
func TestCaddyfilePayDirectives(t *testing.T) {
	out, err := adapt(t, `{
	wechat {
		sandbox
		merchant 1900000001 {
			private_key {file./etc/caddy/apiclient_key.pem}
			serial_no 3775B6A45ACD588826D15E583A95F5DD12345678
			api_v3_key {env.WECHATPAY_APIV3_KEY}
			public_key_id PUB_KEY_ID_0119000000012024070100000000000001
			public_key {file./etc/caddy/pub_key.pem}
		}
		pay_api_base http://127.0.0.1:9
	}
}
:8080 {
	wechat_auth
	wechat_pay_notify /pay/notify {
		mch_id 1900000001
		to http://127.0.0.1:3000/pay/notify
		timeout 2s
		retry_for 1h
		store redis redis://10.0.0.1:6379
		assertion X-Pay-Assertion
	}
	reverse_proxy 127.0.0.1:3000
}
:9002 {
	wechat_pay {
		mch_id 1900000001
		allow /v3/pay/transactions/* /v3/refund/domestic/refunds
		timeout 3s
	}
}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"merchants":[{"mch_id":"1900000001","private_key":"{file./etc/caddy/apiclient_key.pem}","serial_no":"3775B6A45ACD588826D15E583A95F5DD12345678","api_v3_key":"{env.WECHATPAY_APIV3_KEY}","public_key_id":"PUB_KEY_ID_0119000000012024070100000000000001","public_key":"{file./etc/caddy/pub_key.pem}"}],"pay_api_base":"http://127.0.0.1:9"`,
		`{"assertion":true,"assertion_header":"X-Pay-Assertion","handler":"wechat_pay_notify","mch_id":"1900000001","retry_for":3600000000000,"store":"redis://10.0.0.1:6379","timeout":2000000000,"to":"http://127.0.0.1:3000/pay/notify"}`,
		`{"allow":["/v3/pay/transactions/*","/v3/refund/domestic/refunds"],"handler":"wechat_pay","mch_id":"1900000001","timeout":3000000000}`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("adapted config lacks\n%s\nin\n%s", want, out)
		}
	}
	if n, a := strings.Index(out, `"handler":"wechat_pay_notify"`), strings.Index(out, `"handler":"wechat_auth"`); n < 0 || a < 0 || n > a {
		t.Errorf("wechat_pay_notify is not ordered before wechat_auth")
	}
	for _, bad := range []string{
		"{\n\twechat {\n\t\tmerchant\n\t}\n}\n:8080 {\n\trespond ok\n}",
		"{\n\twechat {\n\t\tmerchant 1 {\n\t\t\tcolour red\n\t\t}\n\t}\n}\n:8080 {\n\trespond ok\n}",
		"{\n\twechat {\n\t\tmerchant 1 {\n\t\t\tserial_no A\n\t\t\tserial_no B\n\t\t}\n\t}\n}\n:8080 {\n\trespond ok\n}",
		":8080 {\n\twechat_pay {\n\t\tallow\n\t}\n}",
		":8080 {\n\twechat_pay_notify {\n\t\tto\n\t}\n}",
	} {
		if _, err := adapt(t, bad); err == nil {
			t.Errorf("adapted\n%s", bad)
		}
	}
}

func TestPayPathsRefuseOtherSpellings(t *testing.T) {
	for p, ok := range map[string]bool{
		"/v3/pay/transactions/jsapi":                    true,
		"/v3/pay/transactions/out-trade-no/T_1-a|b*c@d": true,
		"/v3/pay/transactions/out-trade-no/T%7C1":       true,
		"/v3/pay/transactions/out-trade-no/T%2A1%40":    true,
		"/v3/pay/transactions/js%61pi":                  false,
		"/v3/pay/transactions/JS%41PI":                  false,
		"/v3/pay/transactions/out-trade-no/T%31":        false,
		"/v3/pay/transactions/out-trade-no/T%2d1":       false,
		"/v3/pay/transactions/out-trade-no/T%5F1":       false,
		"/v3/pay/transactions/out-trade-no/T%7e1":       false,
		"/v3/pay/transactions/../x":                     false,
		"/v3/pay/transactions/./x":                      false,
		"/v3/pay/transactions//x":                       false,
		"/v3/pay/transactions/":                         false,
		"/v3/pay/transactions/a;b":                      false,
		"/v3/pay/transactions/a%2fb":                    false,
		"/v3/pay/transactions/a%2Fb":                    false,
		"/v3/pay/transactions/%2e%2e":                   false,
		"/v3/pay/transactions/a%5cb":                    false,
		"/v3/pay/transactions/a%00":                     false,
		"/v3/pay/transactions/a%0a":                     false,
		"/v3/pay/transactions/a%":                       false,
		"/v3/pay/transactions/a\\b":                     false,
		"/v3/pay/transactions/a b":                      false,
		"/v3/pay/transactions/a\x00":                    false,
		"v3/pay":                                        false,
	} {
		if got := payPathOK(p); got != ok {
			t.Errorf("payPathOK(%q) = %v, want %v", p, got, ok)
		}
	}
	// A * is a trailing /* or nothing: elsewhere the gateway would take it
	// for a path of its own and refuse the calls meant.
	for _, allow := range []string{"/v3/pay/transactions/out-trade-no/*/close", "/v3/pay/transactions/**", "/v3/pay/*/jsapi"} {
		g := &PayGateway{Allow: []string{allow}}
		if err := g.checkAllow(); err == nil || !strings.Contains(err.Error(), "ends in /*") {
			t.Errorf("allow %s: %v, want it refused", allow, err)
		}
	}
	g := &PayGateway{Allow: []string{"/v3/pay/transactions/*", "/v3/refund/domestic/refunds"}}
	if err := g.checkAllow(); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{
		"/v3/pay/transactions/jsapi":       "/v3/pay/transactions/*",
		"/v3/pay/transactions/id/42/close": "/v3/pay/transactions/*",
		"/v3/pay/transactions":             "",
		"/v3/refund/domestic/refunds":      "/v3/refund/domestic/refunds",
		"/v3/refund/domestic/refunds/R1":   "",
		"/v3/merchant/fund/balance/BASIC":  "",
		"/v3/pay/transactionsX/jsapi":      "",
	} {
		if got := g.allowed(p); got != want {
			t.Errorf("allowed(%q) = %q, want %q", p, got, want)
		}
	}
}

func TestPayOrderAppIDsAndPayer(t *testing.T) {
	g := &PayGateway{appids: map[string]bool{"wxA": true, "wxB": true}}
	for _, tc := range []struct {
		body, openid    string
		app             string // X-WX-APPID, the caller's app
		jsapi           bool
		wantErr         bool
		wantPay, wantIn string
	}{
		{body: `{"appid":"wxA","payer":{"openid":"oOwn"}}`, openid: "oHdr", jsapi: true, wantPay: "wxA", wantIn: `"openid":"oOwn"`},
		{body: `{"appid":"wxA"}`, openid: "oHdr", jsapi: true, wantPay: "wxA", wantIn: `"payer":{"openid":"oHdr"}`},
		{body: `{"appid":"wxA","payer":{}}`, openid: "oHdr", jsapi: true, wantPay: "wxA", wantIn: `"payer":{"openid":"oHdr"}`},
		// An empty or null openid is no openid: a template's "" must not
		// reach WeChat Pay as the payer.
		{body: `{"appid":"wxA","payer":{"openid":""}}`, openid: "oHdr", jsapi: true, wantPay: "wxA", wantIn: `"payer":{"openid":"oHdr"}`},
		{body: `{"appid":"wxA","payer":{"openid":null,"x":1}}`, openid: "oHdr", jsapi: true, wantPay: "wxA", wantIn: `"payer":{"x":1,"openid":"oHdr"}`},
		{body: `{"sp_appid":"wxA","sub_appid":"wxB","payer":{"sub_openid":"","sp_openid":""}}`, openid: "oHdr", jsapi: true, wantPay: "wxB", wantIn: `"payer":{"sub_openid":"oHdr"}`},
		{body: `{"sp_appid":"wxA","sub_appid":"wxB"}`, openid: "oHdr", jsapi: true, wantPay: "wxB", wantIn: `"sub_openid":"oHdr"`},
		{body: `{"sp_appid":"wxA"}`, openid: "oHdr", jsapi: true, wantPay: "wxA", wantIn: `"sp_openid":"oHdr"`},
		{body: `{"appid":"wxA"}`, openid: "oHdr", jsapi: false, wantPay: "wxA", wantIn: `{"appid":"wxA"}`},
		{body: `{"appid":"wxC"}`, wantErr: true},
		{body: `{"sp_appid":"wxA","sub_appid":"wxC"}`, wantErr: true},
		{body: `{"appid":"wxA","appid":"wxC"}`, wantErr: true},
		// A reader matching names without case (the sandbox's, Go's)
		// would take these for the appid or payer the gateway never saw.
		{body: `{"appid":"wxA","APPID":"wxC"}`, wantErr: true},
		{body: `{"AppId":"wxC"}`, wantErr: true},
		{body: `{"sp_appid":"wxA","Sub_AppID":"wxC"}`, wantErr: true},
		{body: `{"appid":"wxA","Payer":{"openid":"oOther"}}`, openid: "oHdr", jsapi: true, wantErr: true},
		{body: `{"appid":"wxA","payer":{"OpenID":"oOther"}}`, openid: "oHdr", jsapi: true, wantErr: true},
		// Or without '_' and '-' (fastjson's smart match), or by Unicode
		// folding (Go's: ſ is s).
		{body: `{"sp_appid":"wxA","subAppid":"wxC"}`, wantErr: true},
		{body: `{"sp_appid":"wxA","sub-appid":"wxC"}`, wantErr: true},
		{body: `{"sp_appid":"wxA","ſub_appid":"wxC"}`, wantErr: true},
		{body: `{"appid":"wxA","payer":{"sub_openid":"","subOpenid":"oOther"}}`, openid: "oHdr", jsapi: true, wantErr: true},
		{body: `{"appid":1}`, wantErr: true},
		// "" or null names no app: it is refused, not taken as absent,
		// so no order goes through with its appid unchecked.
		{body: `{"appid":""}`, openid: "oHdr", jsapi: true, wantErr: true},
		{body: `{"appid":null}`, openid: "oHdr", jsapi: true, wantErr: true},
		{body: `{"sp_appid":"","sub_appid":null}`, openid: "oHdr", jsapi: true, wantErr: true},
		{body: `{"sp_appid":"wxA","sub_appid":null}`, openid: "oHdr", jsapi: true, wantErr: true},
		{body: `[1]`, wantErr: true},
		{body: `{"appid":"wxA","payer":[]}`, openid: "o", jsapi: true, wantErr: true},
		// The caller's openid is filled in only for an order of the
		// caller's app.
		{body: `{"appid":"wxA"}`, openid: "oHdr", app: "wxA", jsapi: true, wantPay: "wxA", wantIn: `"payer":{"openid":"oHdr"}`},
		{body: `{"appid":"wxB"}`, openid: "oHdr", app: "wxA", jsapi: true, wantErr: true},
		{body: `{"sp_appid":"wxA","sub_appid":"wxB"}`, openid: "oHdr", app: "wxA", jsapi: true, wantErr: true},
		{body: `{"sp_appid":"wxA","sub_appid":"wxB"}`, openid: "oHdr", app: "wxB", jsapi: true, wantPay: "wxB", wantIn: `"sub_openid":"oHdr"`},
		{body: `{"appid":"wxB","payer":{"openid":"oOwn"}}`, openid: "oHdr", app: "wxA", jsapi: true, wantPay: "wxB", wantIn: `"openid":"oOwn"`},
	} {
		o, aerr := g.readOrder([]byte(tc.body), tc.jsapi, tc.openid, tc.app)
		if (aerr != nil) != tc.wantErr {
			t.Errorf("%s: error %v, want error %v", tc.body, aerr, tc.wantErr)
			continue
		}
		if aerr != nil {
			if aerr.Status() != 400 {
				t.Errorf("%s: status %d", tc.body, aerr.Status())
			}
			continue
		}
		if o.payAppID != tc.wantPay || !strings.Contains(string(o.body), tc.wantIn) || !json.Valid(o.body) {
			t.Errorf("%s: pays as %q, body %s", tc.body, o.payAppID, o.body)
		}
	}
}
