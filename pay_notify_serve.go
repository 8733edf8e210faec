package wechatauth

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-wechat/wechatauth/internal/apierr"
	"github.com/caddy-wechat/wechatauth/internal/audit"
	"github.com/caddy-wechat/wechatauth/internal/outbox"
	"github.com/caddy-wechat/wechatauth/internal/wxpay"
)

// payNotifyMaxBody bounds a callback body; WeChat Pay's are a few KiB.
const payNotifyMaxBody = 1 << 20

// ServeHTTP verifies, decrypts and delivers one callback. It never calls
// next. Every answer that is not 204 carries WeChat Pay's
// {"code":"FAIL","message":…}, so WeChat Pay retries.
func (n *PayNotify) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if r.Method != http.MethodPost {
		apierr.DiscardBody(w, r)
		w.Header().Set("Allow", http.MethodPost)
		n.fail(w, r, http.StatusMethodNotAllowed, "invalid_request", "WeChat Pay notifications are POSTed.", nil)
		return nil
	}
	body, aerr := apierr.ReadBodyUpTo(w, r, payNotifyMaxBody, apierr.PayloadTooLarge)
	if aerr != nil {
		n.fail(w, r, aerr.Status(), aerr.Code(), "The notification could not be read.", nil)
		return nil
	}
	now := time.Now()
	ev, err := n.open(r, body, now)
	if err != nil {
		// The reason is a fixed sentence of wxpay, safe to log; the
		// answer says no more than that verification failed.
		n.logger.Warn("WeChat Pay notification refused", zap.Error(err))
		n.fail(w, r, http.StatusUnauthorized, "invalid_signature", "The notification failed verification.", nil)
		return nil
	}
	if !headerSafe(ev.id, ev.appid, ev.openid) {
		// Taken, it could never be delivered: its headers would not be.
		n.logger.Warn("WeChat Pay notification refused: its id, appid or openid holds characters a header cannot carry")
		n.fail(w, r, http.StatusBadRequest, "invalid_request", "The notification's id, appid or openid holds characters a header cannot carry.", nil)
		return nil
	}
	res, err := n.delivery.accept(r.Context(), ev.id, "", n.To, ev.header, ev.body)
	fields := []zap.Field{zap.String("mch_id", n.merchant.MchID()), zap.String("id", ev.id), zap.String("event_type", ev.eventType)}
	switch {
	case err != nil:
		n.logger.Error("WeChat Pay notification neither delivered nor queued; WeChat Pay will retry it", zap.String("id", ev.id), zap.Error(err))
		n.fail(w, r, http.StatusServiceUnavailable, outbox.ResultFailed, "The notification could not be stored; retry later.", ev)
		return nil
	case res.Status == outbox.Busy:
		n.fail(w, r, http.StatusServiceUnavailable, outbox.ResultBusy, "The notification is being delivered; retry later.", ev)
		return nil
	}
	w.WriteHeader(http.StatusNoContent)
	audit.Event(n.audit, r, "pay_notify", res.Status.String(), ev.appid, ev.openid, "", fields...)
	return nil
}

// payEvent is a verified, decrypted notification ready for delivery.
type payEvent struct {
	id, eventType string
	appid, openid string // from the decrypted object, when it names them
	header        http.Header
	body          []byte
}

// open verifies the callback's signature and timestamp, decrypts its
// resource and builds the delivery. Every failure is a wxpay
// verification error.
func (n *PayNotify) open(r *http.Request, body []byte, now time.Time) (*payEvent, error) {
	m := n.merchant
	if err := m.verifyAnswer(r.Context(), r.Header, body, now); err != nil {
		return nil, err
	}
	note, err := wxpay.ParseNotification(body)
	if err != nil {
		return nil, err
	}
	if note.ID == "" || len(note.ID) > 128 {
		return nil, errors.Join(wxpay.ErrVerification, errors.New("the notification has no usable id"))
	}
	plain, err := m.DecryptResource(note.Resource)
	if err != nil {
		return nil, err
	}
	out, err := note.WithResource(plain)
	if err != nil {
		return nil, err
	}
	ev := &payEvent{id: note.ID, eventType: note.EventType, body: out}
	var who struct {
		AppID    string `json:"appid"`
		SpAppID  string `json:"sp_appid"`
		SubAppID string `json:"sub_appid"`
		Payer    struct {
			OpenID    string `json:"openid"`
			SpOpenID  string `json:"sp_openid"`
			SubOpenID string `json:"sub_openid"`
		} `json:"payer"`
	}
	if json.Unmarshal(plain, &who) == nil {
		ev.appid, ev.openid = who.AppID, who.Payer.OpenID
		switch {
		case who.SubAppID != "" && who.Payer.SubOpenID != "":
			ev.appid, ev.openid = who.SubAppID, who.Payer.SubOpenID
		case who.SpAppID != "":
			ev.appid, ev.openid = who.SpAppID, who.Payer.SpOpenID
		}
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-Wx-Source", "wx_paycallback")
	h.Set("X-Wx-Event-Id", ev.id)
	h.Set("X-Wx-Mchid", m.MchID())
	if ev.appid != "" {
		h.Set("X-Wx-Appid", ev.appid)
	}
	if ev.openid != "" {
		h.Set("X-Wx-Openid", ev.openid)
	}
	ev.header = h
	return ev, nil
}

// fail answers WeChat Pay with its FAIL shape and writes the audit entry
// (ev nil when the notification did not verify).
func (n *PayNotify) fail(w http.ResponseWriter, r *http.Request, status int, result, message string, ev *payEvent) {
	b, _ := json.Marshal(struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}{"FAIL", message})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
	fields := []zap.Field{zap.String("mch_id", n.merchant.MchID())}
	appid, openid := "", ""
	if ev != nil {
		fields = append(fields, zap.String("id", ev.id), zap.String("event_type", ev.eventType))
		appid, openid = ev.appid, ev.openid
	}
	audit.Event(n.audit, r, "pay_notify", result, appid, openid, "", fields...)
}
