package wechatauth

import (
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-wechat/wechatauth/internal/apierr"
)

// fresh refuses a plain-mode push whose timestamp is older (or further
// ahead) than max_age, or whose (timestamp, nonce) was seen before on any
// instance sharing the store.
func (p *Push) fresh(r *http.Request, ts, nonce string) *apierr.Error {
	remember := 24 * time.Hour
	if p.maxAge > 0 {
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			return apierr.PushRefused
		}
		if age := time.Since(time.Unix(sec, 0)); age > p.maxAge || age < -p.maxAge {
			return apierr.PushRefused
		}
		// A pair older than max_age is refused by its age already.
		remember = 2 * p.maxAge
	}
	if len(ts) > 32 || len(nonce) > 128 {
		return apierr.PushRefused
	}
	first, err := p.delivery.firstSight(r.Context(), "plain:"+p.AppID+":"+ts+":"+nonce, remember)
	if err != nil {
		p.logger.Warn("wechat_push: the replay check cannot reach the store; WeChat will retry", zap.Error(err))
		return apierr.DeliveryUnavailable
	}
	if !first {
		return apierr.PushRefused
	}
	return nil
}
