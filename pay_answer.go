package wechatauth

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// A signature of WeChat Pay binds an answer, not the call it answers. An
// answer that names what it is about (an order, a transaction, a refund)
// must name what the call asked for, so that a genuine answer withheld
// from one call and handed to another is refused.

// callSubject returns the member a 200 answer to the call must hold and
// the value it must have, or ok false when the call names nothing the
// answer repeats (a JSAPI order's answer holds only its prepay_id).
func callSubject(method, path string, body []byte) (member, want string, ok bool) {
	if method == http.MethodPost && path == "/v3/refund/domestic/refunds" {
		var in struct {
			OutRefundNo string `json:"out_refund_no"`
		}
		if json.Unmarshal(body, &in) != nil || in.OutRefundNo == "" {
			return "", "", false
		}
		return "out_refund_no", in.OutRefundNo, true
	}
	if method != http.MethodGet {
		return "", "", false
	}
	for _, s := range []struct{ prefix, member string }{
		{"/v3/pay/transactions/out-trade-no/", "out_trade_no"},
		{"/v3/pay/partner/transactions/out-trade-no/", "out_trade_no"},
		{"/v3/pay/transactions/id/", "transaction_id"},
		{"/v3/pay/partner/transactions/id/", "transaction_id"},
		{"/v3/refund/domestic/refunds/", "out_refund_no"},
	} {
		rest, found := strings.CutPrefix(path, s.prefix)
		if !found || rest == "" || strings.Contains(rest, "/") {
			continue
		}
		v, err := url.PathUnescape(rest)
		if err != nil {
			return "", "", false
		}
		return s.member, v, true
	}
	return "", "", false
}

// answerFitsCall reports whether a verified answer is about what its call
// asked for: a 200 answer to a query of an order, a transaction or a
// refund, or to a refund, names that same one.
func answerFitsCall(method, path string, body []byte, status int, answer []byte) bool {
	if status != http.StatusOK {
		return true
	}
	member, want, ok := callSubject(method, path, body)
	if !ok {
		return true
	}
	var got map[string]json.RawMessage
	if json.Unmarshal(answer, &got) != nil {
		return false
	}
	var v string
	return json.Unmarshal(got[member], &v) == nil && v == want
}
