package wechatauth

import (
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-wechat/wechatauth/internal/apierr"
	"github.com/caddy-wechat/wechatauth/internal/msgcrypt"
)

// fresh refuses a plain-mode push whose timestamp is older (or further
// ahead) than max_age, or not written canonically, or whose signature was
// seen before on any instance sharing the store.
func (p *Push) fresh(r *http.Request, ts, nonce string) *apierr.Error {
	remember := 24 * time.Hour
	if p.maxAge > 0 {
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || strconv.FormatInt(sec, 10) != ts {
			// Only the canonical spelling: "0"+ts or "+"+ts would be a
			// new (timestamp, nonce) under the same signature.
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
	first, err := p.delivery.firstSight(r.Context(), p.replayKey(ts, nonce), remember)
	if err != nil {
		p.logger.Warn("wechat_push: the replay check cannot reach the store; WeChat will retry", zap.Error(err))
		return apierr.DeliveryUnavailable
	}
	if !first {
		return apierr.PushRefused
	}
	return nil
}

// replayKey names a plain-mode push in the seen set by its signature, not
// by (timestamp, nonce): the signature hashes their sorted concatenation
// without separators, so digits moved between the two make a new pair
// with the same signature, which must count as seen.
func (p *Push) replayKey(ts, nonce string) string {
	return "plain:" + p.AppID + ":sig:" + msgcrypt.Signature(p.token, ts, nonce)
}

// unsee forgets a plain-mode push's (timestamp, nonce) when the push was
// neither delivered nor queued: WeChat's retry of it, which may carry the
// same pair, must not be refused as a replay.
func (p *Push) unsee(r *http.Request, q map[string][]string) {
	if p.crypter != nil {
		return
	}
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	if err := p.delivery.forget(r.Context(), p.replayKey(get("timestamp"), get("nonce"))); err != nil {
		p.logger.Warn("wechat_push: cannot forget a failed plain-mode push's (timestamp, nonce); WeChat's retry of it may be refused", zap.Error(err))
	}
}
