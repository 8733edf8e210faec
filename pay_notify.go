package wechatauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/apierr"
	"github.com/caddy-wechat/wechatauth/internal/audit"
	"github.com/caddy-wechat/wechatauth/internal/metrics"
	"github.com/caddy-wechat/wechatauth/internal/outbox"
	"github.com/caddy-wechat/wechatauth/internal/wxpay"
	"github.com/caddy-wechat/wechatauth/wechat"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(PayNotify{})
	httpcaddyfile.RegisterHandlerDirective("wechat_pay_notify", parsePayNotifyCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("wechat_pay_notify", httpcaddyfile.After, "try_files") // before wechat_auth: WeChat Pay sends no token
}

// PayNotify receives WeChat Pay's callbacks (the notify_url of an order or
// refund): it checks WeChat Pay's signature and timestamp, decrypts the
// resource with the APIv3 key, and delivers the notification to `to` with
// the resource replaced by the decrypted object, at least once: WeChat
// Pay is answered 204 only once the upstream took it or it is in the
// durable outbox, which retries it. WeChat Pay's retries of a
// notification (same id) are not delivered again.
//
// The upstream gets a POST with X-WX-SOURCE: wx_paycallback,
// X-WX-EVENT-ID (the notification id, its idempotency key), X-WX-MCHID,
// and X-WX-APPID and X-WX-OPENID when the decrypted object names them.
type PayNotify struct {
	// The merchant of the wechat app whose keys verify and decrypt; may
	// be left out when the wechat app has one merchant.
	MchID string `json:"mch_id,omitempty"`

	// The merchant's own key lines (private_key, serial_no, api_v3_key,
	// public_key_id, public_key, as in the wechat app's merchant block),
	// for a merchant the wechat app does not hold; mch_id is then
	// required. private_key and api_v3_key only as placeholders
	// ({env.*}, {file.*}): a handler's config is copied into Caddy's
	// DEBUG log. Default: the wechat app's merchant of mch_id.
	Keys *Merchant `json:"keys,omitempty"`

	DeliveryConfig

	logger   *zap.Logger
	audit    *zap.Logger
	merchant *payMerchant
}

// CaddyModule returns the Caddy module information.
func (PayNotify) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.wechat_pay_notify",
		New: func() caddy.Module { return new(PayNotify) },
	}
}

// Provision takes the merchant from the wechat app and registers the
// delivery outbox, which opens when the app starts.
func (n *PayNotify) Provision(ctx caddy.Context) error {
	// First, so that a config refused below keeps the series on /metrics.
	if err := metrics.Init(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("wechat_pay_notify: metrics: %w", err)
	}
	n.logger = ctx.Logger()
	n.audit = newAuditLogger(ctx)
	app, err := loadApp(ctx)
	if err != nil {
		return err
	}
	if n.merchant, err = app.handlerMerchant("wechat_pay_notify", n.MchID, n.Keys); err != nil {
		return err
	}
	warnLiteralSecrets(ctx.Logger(), "wechat_pay_notify", n.DeliveryConfig.secretFields()...)
	return n.DeliveryConfig.open(ctx, app, "wechat_pay_notify", "pay_notify", n.merchant.MchID(), "X-Wx-Mchid")
}

// payNotifyMaxBody bounds a callback body; WeChat Pay's are a few KiB.
const payNotifyMaxBody = 1 << 20

// ServeHTTP verifies, decrypts and delivers one callback. It never calls
// next. Every answer that is not 204 carries WeChat Pay's
// {"code":"FAIL","message":…}, so WeChat Pay retries.
func (n *PayNotify) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if r.Method != http.MethodPost {
		after := apierr.Unwanted(w, r)
		w.Header().Set("Allow", http.MethodPost)
		n.fail(w, r, http.StatusMethodNotAllowed, "invalid_request", "WeChat Pay notifications are POSTed.", nil)
		after()
		return nil
	}
	r, done := n.delivery.serve(r)
	defer done()
	body, aerr := apierr.ReadBodyUpTo(w, r, payNotifyMaxBody, apierr.PayloadTooLarge)
	if aerr != nil {
		after := apierr.Unwanted(w, r)
		n.fail(w, r, aerr.Status(), aerr.Code(), "The notification could not be read.", nil)
		after()
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
	res, err := n.delivery.accept(r.Context(), ev.id, "", ev.header, ev.body)
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
	note, out, err := m.ReadNotification(body)
	if err != nil {
		return nil, err
	}
	if note.ID == "" || len(note.ID) > 128 {
		return nil, errors.Join(wxpay.ErrVerification, errors.New("the notification has no usable id"))
	}
	if wechat.RepeatsMember(note.Decrypted) {
		return nil, errors.Join(wxpay.ErrVerification, errors.New("the notification gives a member twice"))
	}
	ev := &payEvent{id: note.ID, eventType: note.EventType, body: out}
	// X-WX-MCHID says whose money this is: a body naming another merchant
	// (a service provider's is sp_mchid), or one whose merchant cannot be
	// read, would contradict it.
	var mch struct {
		MchID   *string `json:"mchid"`
		SpMchID *string `json:"sp_mchid"`
	}
	if err := json.Unmarshal(note.Decrypted, &mch); err != nil {
		return nil, errors.Join(wxpay.ErrVerification, errors.New("the notification's merchant cannot be read"))
	}
	named := mch.MchID
	if mch.SpMchID != nil {
		named = mch.SpMchID
	}
	if named != nil && *named != m.MchID() {
		return nil, errors.Join(wxpay.ErrVerification, errors.New("the notification names another merchant"))
	}
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
	if json.Unmarshal(note.Decrypted, &who) == nil {
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

// Interface guards
var (
	_ caddy.Provisioner           = (*PayNotify)(nil)
	_ caddy.CleanerUpper          = (*PayNotify)(nil)
	_ caddyhttp.MiddlewareHandler = (*PayNotify)(nil)
	_ caddy.Module                = (*PayNotify)(nil)
	_ caddyfile.Unmarshaler       = (*PayNotify)(nil)
)
