package wechatauth

import (
	"encoding/json"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// refundsPath is where WeChat Pay takes refunds.
const refundsPath = "/v3/refund/domestic/refunds"

// sandboxRefundAfter is how long after taking a refund the sandbox's
// WeChat Pay sends its REFUND.SUCCESS callback.
const sandboxRefundAfter = time.Second

// sandboxRefunded follows a refund the sandbox merchant took (POST
// refundsPath answered 200) with the signed, encrypted REFUND.SUCCESS
// callback to the refund's notify_url (the order's when it named none), a
// moment later, as WeChat Pay does once the money is back: a refund flow
// runs end to end offline. Nothing is sent once the config is unloaded.
func (g *PayGateway) sandboxRefunded(method, path string, status int, answer []byte) {
	if g.merchant.fake == nil || method != http.MethodPost || path != refundsPath || status != http.StatusOK {
		return
	}
	var refund struct {
		OutRefundNo string `json:"out_refund_no"`
	}
	if json.Unmarshal(answer, &refund) != nil || refund.OutRefundNo == "" {
		return
	}
	fake, done, log := g.merchant.fake, g.ctx.Done(), g.logger
	go func() {
		select {
		case <-done:
			return
		case <-time.After(sandboxRefundAfter):
		}
		if _, err := fake.MarkRefunded(refund.OutRefundNo); err != nil {
			log.Warn("sandbox: the refund's REFUND.SUCCESS callback was not taken", zap.Error(err))
		}
	}()
}
