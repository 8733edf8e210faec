package wechatauth

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// A signature of WeChat Pay binds an answer, not the call it answers. An
// answer that names what it is about (an order, a transaction, a refund,
// a sub-merchant) must name what the call asked for, so that a genuine
// answer withheld from one call and handed to another is refused. What
// names nothing cannot be checked this way: WeChat Pay's error answers
// (404 ORDER_NOT_EXIST), a close's 204, a JSAPI order's prepay_id, a
// refund's sub-merchant, combined orders.

// subject is a member a 200 answer to a call must hold, with its value.
type subject struct{ member, want string }

// callSubjects returns what a 200 answer to the call must name; none
// when the call names nothing its answer repeats.
func callSubjects(method, path, query string, body []byte) []subject {
	if method == http.MethodPost && path == "/v3/refund/domestic/refunds" {
		// The member as WeChat Pay reads it: exactly this name.
		var in map[string]json.RawMessage
		var no string
		if json.Unmarshal(body, &in) != nil || json.Unmarshal(in["out_refund_no"], &no) != nil || no == "" {
			return nil
		}
		return []subject{{"out_refund_no", no}}
	}
	if method != http.MethodGet {
		return nil
	}
	for _, s := range []struct {
		prefix, member string
		partner        bool
	}{
		{"/v3/pay/transactions/out-trade-no/", "out_trade_no", false},
		{"/v3/pay/partner/transactions/out-trade-no/", "out_trade_no", true},
		{"/v3/pay/transactions/id/", "transaction_id", false},
		{"/v3/pay/partner/transactions/id/", "transaction_id", true},
		{"/v3/refund/domestic/refunds/", "out_refund_no", false},
	} {
		rest, found := strings.CutPrefix(path, s.prefix)
		if !found || rest == "" || strings.Contains(rest, "/") {
			continue
		}
		v, err := url.PathUnescape(rest)
		if err != nil {
			return nil
		}
		subjects := []subject{{s.member, v}}
		// An out_trade_no is unique within one merchant only: a service
		// provider's answer names the sub-merchant it is about.
		if q, err := url.ParseQuery(query); s.partner && err == nil && q.Get("sub_mchid") != "" {
			subjects = append(subjects, subject{"sub_mchid", q.Get("sub_mchid")})
		}
		return subjects
	}
	return nil
}

// answerFitsCall reports whether a verified answer is about what its call
// asked for: a 200 answer to a query of an order, a transaction or a
// refund, or to a refund, names that same one (and a service provider's
// query, the sub-merchant).
func answerFitsCall(method, path, query string, body []byte, status int, answer []byte) bool {
	if status != http.StatusOK {
		return true
	}
	subjects := callSubjects(method, path, query, body)
	if len(subjects) == 0 {
		return true
	}
	var got map[string]json.RawMessage
	if json.Unmarshal(answer, &got) != nil {
		return false
	}
	for _, s := range subjects {
		var v string
		if json.Unmarshal(got[s.member], &v) != nil || v != s.want {
			return false
		}
	}
	return true
}
