package wechatauth

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestAnswerFitsItsCall(t *testing.T) {
	const order = `{"mchid":"1900000001","out_trade_no":"A1","transaction_id":"4200000001","trade_state":"SUCCESS"}`
	const refund = `{"out_refund_no":"R1","refund_id":"5030000001","status":"PROCESSING"}`
	const partner = `{"sp_mchid":"1900000001","sub_mchid":"1900000109","out_trade_no":"A1","transaction_id":"4200000001"}`
	for _, tc := range []struct {
		method, path, body string
		status             int
		answer             string
		want               bool
	}{
		// A service provider's order number is unique within one
		// sub-merchant: the answer must name the sub-merchant asked for.
		{"GET", "/v3/pay/partner/transactions/out-trade-no/A1?sp_mchid=1900000001&sub_mchid=1900000109", "", 200, partner, true},
		{"GET", "/v3/pay/partner/transactions/out-trade-no/A1?sp_mchid=1900000001&sub_mchid=1900000110", "", 200, partner, false},
		{"GET", "/v3/pay/partner/transactions/id/4200000001?sp_mchid=1900000001&sub_mchid=1900000110", "", 200, partner, false},
		// The refund WeChat Pay makes is the one its exact member names.
		{"POST", "/v3/refund/domestic/refunds", `{"out_refund_no":"R1","OUT_REFUND_NO":"X"}`, 200, `{"out_refund_no":"R1"}`, true},
		{"GET", "/v3/pay/transactions/out-trade-no/A1", "", 200, order, true},
		{"GET", "/v3/pay/transactions/out-trade-no/B1", "", 200, order, false},
		{"GET", "/v3/pay/partner/transactions/out-trade-no/B1", "", 200, order, false},
		{"GET", "/v3/pay/transactions/id/4200000001", "", 200, order, true},
		{"GET", "/v3/pay/transactions/id/4200000002", "", 200, order, false},
		{"GET", "/v3/pay/transactions/out-trade-no/A%7C1", "", 200, strings.Replace(order, `"A1"`, `"A|1"`, 1), true},
		{"GET", "/v3/refund/domestic/refunds/R1", "", 200, refund, true},
		{"GET", "/v3/refund/domestic/refunds/R2", "", 200, refund, false},
		{"POST", "/v3/refund/domestic/refunds", `{"out_trade_no":"A1","out_refund_no":"R1"}`, 200, refund, true},
		{"POST", "/v3/refund/domestic/refunds", `{"out_trade_no":"A1","out_refund_no":"R2"}`, 200, refund, false},
		// Another API's answer, or none, for a query: refused.
		{"GET", "/v3/pay/transactions/out-trade-no/A1", "", 200, `{"data":[]}`, false},
		{"GET", "/v3/pay/transactions/out-trade-no/A1", "", 200, ``, false},
		{"GET", "/v3/pay/transactions/out-trade-no/A1", "", 200, `{"OUT_TRADE_NO":"A1"}`, false},
		// WeChat Pay's errors, and calls whose answer names nothing of them.
		{"GET", "/v3/pay/transactions/out-trade-no/B1", "", 404, `{"code":"ORDER_NOT_EXIST"}`, true},
		{"POST", "/v3/pay/transactions/jsapi", `{"out_trade_no":"B1"}`, 200, `{"prepay_id":"wx201410272009395522657a690389285100"}`, true},
		{"POST", "/v3/pay/transactions/out-trade-no/A1/close", `{"mchid":"1900000001"}`, 204, ``, true},
	} {
		path, query, _ := strings.Cut(tc.path, "?")
		if got := answerFitsCall(tc.method, path, query, []byte(tc.body), tc.status, []byte(tc.answer)); got != tc.want {
			t.Errorf("%s %s %s → %d %s: fits %v, want %v", tc.method, tc.path, tc.body, tc.status, tc.answer, got, tc.want)
		}
	}
}

// A genuine answer withheld from its own call and handed to another, as
// its first take, is refused: the answer about order A does not answer a
// query of order B.
func TestPayAnswerAboutAnotherOrderIsRefused(t *testing.T) {
	pm, _ := testPayMerchant(t, func(pay http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/out-trade-no/B") {
				r.URL.Path = strings.TrimSuffix(r.URL.Path, "B") + "A"
			}
			pay.ServeHTTP(w, r)
		})
	})
	g := &PayGateway{merchant: pm}
	call := func(method, path, query, body string) (int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, _, err := g.call(ctx, method, path, query, []byte(body))
		if err != nil {
			return 0, err
		}
		return resp.StatusCode, nil
	}
	order := `{"appid":"wx1234567890abcdef","mchid":"` + testMchID + `","description":"tea","out_trade_no":"A","notify_url":"https://example.com/n","amount":{"total":1},"payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}}`
	if code, err := call("POST", "/v3/pay/transactions/jsapi", "", order); err != nil || code != http.StatusOK {
		t.Fatalf("order A: %d %v", code, err)
	}
	if code, err := call("GET", "/v3/pay/transactions/out-trade-no/A", "mchid="+testMchID, ""); err != nil || code != http.StatusOK {
		t.Fatalf("query of A: %d %v", code, err)
	}
	if _, err := call("GET", "/v3/pay/transactions/out-trade-no/B", "mchid="+testMchID, ""); !errors.Is(err, errPayAnswer) {
		t.Fatalf("A's answer for a query of B: %v, want it refused", err)
	}
}
