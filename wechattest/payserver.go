package wechattest

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// PayOptions configure the fake WeChat Pay.
type PayOptions struct {
	// MchID is the merchant the fake serves (required).
	MchID string
	// APIv3Key is the merchant's APIv3 key, 32 bytes (required): callbacks
	// and certificates are encrypted with it.
	APIv3Key string
	// MerchantKey is the public half of the merchant API key: every
	// request's signature must verify with it (required).
	MerchantKey *rsa.PublicKey
	// MerchantSerial, when set, is the serial_no a request must name.
	MerchantSerial string
	// SignWithCertificate makes answers and callbacks signed with the
	// platform certificate's key (Wechatpay-Serial its serial) instead of
	// the public key (Wechatpay-Serial PUB_KEY_ID_…); SetSignWithCertificate
	// switches later, as a migration does.
	SignWithCertificate bool
	// Payers, when set, maps each openid the fake knows to the appid it
	// belongs to: an order whose payer openid is unknown or of another app
	// is refused with WeChat's "appid和openid不匹配" (in partner mode,
	// sp_openid against sp_appid and sub_openid against sub_appid).
	Payers map[string]string
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
	// Client posts callbacks; http.DefaultClient when nil.
	Client *http.Client
}

// PayOrder is an order as the fake WeChat Pay holds it.
type PayOrder struct {
	Partner       bool
	AppID         string // appid, or sp_appid for a partner order
	SubAppID      string
	SubMchID      string
	OpenID        string // payer.openid or payer.sp_openid
	SubOpenID     string
	OutTradeNo    string
	TransactionID string // set once paid
	PrepayID      string
	Description   string
	NotifyURL     string
	Total         int64
	Currency      string
	State         string // NOTPAY, SUCCESS, CLOSED, REFUND
	SuccessTime   time.Time
	Refunded      int64
	// NotificationID is the id of its TRANSACTION.SUCCESS notification,
	// the same on every resend.
	NotificationID string
}

// PayRefund is a refund the fake holds.
type PayRefund struct {
	RefundID, OutRefundNo, OutTradeNo, TransactionID string
	Refund, Total                                    int64
	Currency                                         string
	NotifyURL                                        string // the refund's, else the order's
	Created                                          time.Time
}

// PayRequest is a request the fake saw.
type PayRequest struct {
	Method, URI   string
	Authorization string
	Body          []byte
	Verified      bool // the merchant signature verified
	Status        int  // what the fake answered
}

// PayCallback is a callback the fake posted and what it got back.
type PayCallback struct {
	URL    string
	Header http.Header
	Body   []byte
	Status int
	Answer []byte
	Err    error
}

// Ways to spoil the next answer, for tests of the merchant's checks.
const (
	PayAnswerBadSignature = "bad"      // a signature over other bytes
	PayAnswerSignTest     = "signtest" // a WECHATPAY/SIGNTEST/ probe
	PayAnswerUnsigned     = "unsigned" // no Wechatpay-* headers
	// PayAnswerDuplicate: a second prepay_id member, signed like the rest.
	PayAnswerDuplicate = "duplicate"
)

// Pay is a fake WeChat Pay APIv3 with real crypto: its own keys, every
// request's merchant signature checked, every answer signed, JSAPI
// orders (direct and partner), queries, close, refunds, /v3/certificates,
// and MarkPaid sending the TRANSACTION.SUCCESS callback. Build it with
// NewPay; serve it with httptest or use Client.
type Pay struct {
	opts PayOptions
	keys *PayKeys

	mu           sync.Mutex
	signWithCert bool
	spoil        []string
	orders       map[string]*PayOrder // by out_trade_no
	byPrepay     map[string]string    // prepay_id → out_trade_no
	byTxn        map[string]string    // transaction_id → out_trade_no
	refunds      map[string]*PayRefund
	seen         []PayRequest
	callbacks    []PayCallback
	seq          int64
}

// NewPay returns a fake WeChat Pay with freshly generated keys.
func NewPay(opts PayOptions) (*Pay, error) {
	if opts.MchID == "" || len(opts.APIv3Key) != 32 || opts.MerchantKey == nil {
		return nil, errors.New("wechattest: NewPay needs MchID, a 32-byte APIv3Key and MerchantKey")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Client == nil {
		opts.Client = http.DefaultClient
	}
	keys, err := newPayKeys(opts.MchID, opts.Now())
	if err != nil {
		return nil, err
	}
	return &Pay{
		opts:         opts,
		keys:         keys,
		signWithCert: opts.SignWithCertificate,
		orders:       make(map[string]*PayOrder),
		byPrepay:     make(map[string]string),
		byTxn:        make(map[string]string),
		refunds:      make(map[string]*PayRefund),
	}, nil
}

// Keys returns the fake's keys: give PublicKeyID and PublicKeyPEM (or
// CertPEM) to the merchant configuration.
func (p *Pay) Keys() *PayKeys { return p.keys }

// SetSignWithCertificate switches the key answers and callbacks are signed
// with: the platform certificate's (true) or the public key (false).
func (p *Pay) SetSignWithCertificate(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.signWithCert = on
}

// SpoilNext makes the next answer carry a bad signature, a SIGNTEST probe,
// none, or a duplicate member (PayAnswerBadSignature, PayAnswerSignTest,
// PayAnswerUnsigned, PayAnswerDuplicate).
func (p *Pay) SpoilNext(how string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.spoil = append(p.spoil, how)
}

// Requests returns the requests seen, oldest first.
func (p *Pay) Requests() []PayRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]PayRequest(nil), p.seen...)
}

// Callbacks returns the callbacks posted, oldest first.
func (p *Pay) Callbacks() []PayCallback {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]PayCallback(nil), p.callbacks...)
}

// Order returns the order of out_trade_no.
func (p *Pay) Order(outTradeNo string) (PayOrder, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	o, ok := p.orders[outTradeNo]
	if !ok {
		return PayOrder{}, false
	}
	return *o, true
}

// OrderByPrepayID returns the order of a prepay_id.
func (p *Pay) OrderByPrepayID(prepayID string) (PayOrder, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	no, ok := p.byPrepay[prepayID]
	if !ok {
		return PayOrder{}, false
	}
	return *p.orders[no], true
}

// Client returns an HTTP client served by p in-process, with no socket.
func (p *Pay) Client() *http.Client {
	return &http.Client{Transport: inProcess{p}}
}

// MarkPaid marks the order of prepayID paid, as a payer confirming in
// WeChat does, and POSTs the signed, encrypted TRANSACTION.SUCCESS callback
// to the order's notify_url, returning what the notify URL answered.
// Paying a paid order sends the callback again as WeChat's retry does,
// with the same notification id, so a receiver delivers it once; a closed
// or refunded order is refused.
func (p *Pay) MarkPaid(prepayID string) (PayCallback, error) {
	p.mu.Lock()
	no, ok := p.byPrepay[prepayID]
	if !ok {
		p.mu.Unlock()
		return PayCallback{}, fmt.Errorf("wechattest: no order of prepay_id %q", prepayID)
	}
	o := p.orders[no]
	if o.State == "CLOSED" || o.State == "REFUND" {
		p.mu.Unlock()
		return PayCallback{}, fmt.Errorf("wechattest: order %q is %s", no, strings.ToLower(o.State))
	}
	if o.State == "NOTPAY" {
		p.seq++
		o.TransactionID = fmt.Sprintf("42000%s%s%010d", p.opts.Now().In(chinaTime).Format("20060102"), randomDigits(5), p.seq)
		o.State = "SUCCESS"
		o.SuccessTime = p.opts.Now()
		o.NotificationID = newUUID()
		p.byTxn[o.TransactionID] = no
	}
	plaintext := compactJSON(p.transactionLocked(o))
	url, id := o.NotifyURL, o.NotificationID
	p.mu.Unlock()

	n, err := p.notification(id, "TRANSACTION.SUCCESS", "支付成功", "transaction", plaintext)
	if err != nil {
		return PayCallback{}, err
	}
	cb := p.post(url, n)
	return cb, cb.Err
}

// MarkRefunded POSTs the signed, encrypted REFUND.SUCCESS callback of the
// refund out_refund_no to its notify_url (the order's when the refund
// named none), returning what the notify URL answered.
func (p *Pay) MarkRefunded(outRefundNo string) (PayCallback, error) {
	p.mu.Lock()
	r := p.refunds[outRefundNo]
	if r == nil {
		p.mu.Unlock()
		return PayCallback{}, fmt.Errorf("wechattest: no refund %q", outRefundNo)
	}
	plaintext := compactJSON(map[string]any{
		"mchid":                 p.opts.MchID,
		"transaction_id":        r.TransactionID,
		"out_trade_no":          r.OutTradeNo,
		"refund_id":             r.RefundID,
		"out_refund_no":         r.OutRefundNo,
		"refund_status":         "SUCCESS",
		"success_time":          p.opts.Now().In(chinaTime).Format(time.RFC3339),
		"user_received_account": "支付用户零钱",
		"amount":                map[string]any{"total": r.Total, "refund": r.Refund, "payer_total": r.Total, "payer_refund": r.Refund},
	})
	url := r.NotifyURL
	p.mu.Unlock()
	n, err := p.Notification("REFUND.SUCCESS", "退款成功", "refund", plaintext)
	if err != nil {
		return PayCallback{}, err
	}
	cb := p.post(url, n)
	return cb, cb.Err
}

func (p *Pay) post(url string, n PayNotification) PayCallback {
	cb := PayCallback{URL: url, Header: n.Header, Body: n.Body}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(n.Body))
	if err != nil {
		cb.Err = fmt.Errorf("wechattest: notify_url: %w", err)
	} else {
		req.Header = n.Header.Clone()
		req.Header.Set("User-Agent", "Mozilla/4.0")
		resp, err := p.opts.Client.Do(req)
		if err != nil {
			cb.Err = fmt.Errorf("wechattest: callback: %w", err)
		} else {
			cb.Status = resp.StatusCode
			cb.Answer, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
		}
	}
	p.mu.Lock()
	p.callbacks = append(p.callbacks, cb)
	p.mu.Unlock()
	return cb
}

// ServeHTTP serves WeChat Pay's APIv3.
func (p *Pay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body []byte
	if r.Body != nil { // nil for a body-less request through Client
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err == nil {
			body = b
		}
	}
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	rec := PayRequest{Method: r.Method, URI: uri, Authorization: r.Header.Get("Authorization"), Body: body}
	rec.Verified = p.checkSignature(r.Method, uri, r.Header.Get("Authorization"), body)
	var status int
	var answer any
	switch {
	case !rec.Verified:
		status, answer = http.StatusUnauthorized, payError("SIGN_ERROR", "签名错误")
	case len(body) > 0 && membersRepeated(body):
		status, answer = http.StatusBadRequest, payError("PARAM_ERROR", "请求体含重复字段")
	default:
		status, answer = p.route(r.Method, r.URL.Path, r.URL.Query().Get("mchid"), body)
	}
	rec.Status = status
	p.mu.Lock()
	p.seen = append(p.seen, rec)
	p.mu.Unlock()
	p.answer(w, status, answer)
}

func (p *Pay) checkSignature(method, uri, authz string, body []byte) bool {
	a, err := ParsePayAuthorization(authz)
	if err != nil || a.MchID != p.opts.MchID {
		return false
	}
	if p.opts.MerchantSerial != "" && !strings.EqualFold(a.SerialNo, p.opts.MerchantSerial) {
		return false
	}
	ts, err := strconv.ParseInt(a.Timestamp, 10, 64)
	if err != nil {
		return false
	}
	if d := p.opts.Now().Sub(time.Unix(ts, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return false
	}
	return PayVerifyRSA(p.opts.MerchantKey, method+"\n"+uri+"\n"+a.Timestamp+"\n"+a.NonceStr+"\n"+string(body)+"\n", a.Signature)
}

func (p *Pay) answer(w http.ResponseWriter, status int, v any) {
	var body []byte
	if v != nil {
		body = compactJSON(v)
		w.Header().Set("Content-Type", "application/json")
	}
	p.mu.Lock()
	var spoil string
	if len(p.spoil) > 0 {
		spoil, p.spoil = p.spoil[0], p.spoil[1:]
	}
	p.mu.Unlock()
	w.Header().Set("Request-ID", strings.ToUpper(randomAlnum(24)))
	if spoil == PayAnswerDuplicate && len(body) > 1 && body[len(body)-1] == '}' {
		body = append(body[:len(body)-1:len(body)-1], `,"prepay_id":"wx0000000000duplicate"}`...)
	}
	if spoil != PayAnswerUnsigned {
		if err := p.signInto(w.Header(), body, p.opts.Now()); err != nil {
			http.Error(w, "signing failed", http.StatusInternalServerError)
			return
		}
		switch spoil {
		case PayAnswerBadSignature:
			sig, _ := PaySignRSA(p.keys.PublicKey, "not the answer")
			if p.signWithCertNow() {
				sig, _ = PaySignRSA(p.keys.CertKey, "not the answer")
			}
			w.Header().Set("Wechatpay-Signature", sig)
		case PayAnswerSignTest:
			w.Header().Set("Wechatpay-Signature", "WECHATPAY/SIGNTEST/"+w.Header().Get("Wechatpay-Signature"))
		}
	}
	w.WriteHeader(status)
	w.Write(body)
}

func (p *Pay) signWithCertNow() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.signWithCert
}

func payError(code, message string) map[string]string {
	return map[string]string{"code": code, "message": message}
}

// membersRepeated reports whether a JSON body names a member twice in one
// object, in any spelling of case. The fake reads bodies with
// encoding/json, which matches names without regard to case and keeps the
// last: such a body would be read as another order than the one a
// case-sensitive reader (WeChat Pay's) sees, so it is refused instead.
// wechat.RepeatsMember is the client's check of the same kind; the fake
// imports nothing of the module (wechat and wechattest stand alone), so
// it keeps this smaller one.
func membersRepeated(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	var walk func() bool // reads one value; true when a repeat is found
	walk = func() bool {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		switch tok {
		case json.Delim('{'):
			names := map[string]bool{}
			for dec.More() {
				key, err := dec.Token()
				if err != nil {
					return false
				}
				// encoding/json folds as Unicode does: ſ is s, K (Kelvin) is k.
				name, _ := key.(string)
				name = strings.ToLower(strings.ToUpper(name))
				if names[name] {
					return true
				}
				names[name] = true
				if walk() {
					return true
				}
			}
			dec.Token()
		case json.Delim('['):
			for dec.More() {
				if walk() {
					return true
				}
			}
			dec.Token()
		}
		return false
	}
	return walk()
}

// route serves a verified request; it returns the status and the JSON
// answer (nil for none).
func (p *Pay) route(method, path, mchid string, body []byte) (int, any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	const (
		txnNo  = "/v3/pay/transactions/out-trade-no/"
		txnID  = "/v3/pay/transactions/id/"
		refund = "/v3/refund/domestic/refunds/"
	)
	switch {
	case method == http.MethodPost && path == "/v3/pay/transactions/jsapi":
		return p.jsapiLocked(body, false)
	case method == http.MethodPost && path == "/v3/pay/partner/transactions/jsapi":
		return p.jsapiLocked(body, true)
	case method == http.MethodGet && path == "/v3/certificates":
		return p.certificatesLocked()
	case method == http.MethodPost && strings.HasPrefix(path, txnNo) && strings.HasSuffix(path, "/close"):
		return p.closeLocked(strings.TrimSuffix(strings.TrimPrefix(path, txnNo), "/close"), body)
	case method == http.MethodGet && strings.HasPrefix(path, txnNo):
		if mchid != p.opts.MchID {
			return http.StatusBadRequest, payError("PARAM_ERROR", "mchid 与请求的商户号不一致")
		}
		return p.queryLocked(p.orders[strings.TrimPrefix(path, txnNo)])
	case method == http.MethodGet && strings.HasPrefix(path, txnID):
		if mchid != p.opts.MchID {
			return http.StatusBadRequest, payError("PARAM_ERROR", "mchid 与请求的商户号不一致")
		}
		return p.queryLocked(p.orders[p.byTxn[strings.TrimPrefix(path, txnID)]])
	case method == http.MethodPost && path == "/v3/refund/domestic/refunds":
		return p.refundLocked(body)
	case method == http.MethodGet && strings.HasPrefix(path, refund):
		r := p.refunds[strings.TrimPrefix(path, refund)]
		if r == nil {
			return http.StatusNotFound, payError("RESOURCE_NOT_EXISTS", "退款单不存在")
		}
		return http.StatusOK, p.refundJSON(r, "SUCCESS")
	}
	return http.StatusNotFound, payError("NOT_FOUND", "请求的资源不存在")
}

type jsapiOrder struct {
	AppID       string `json:"appid"`
	MchID       string `json:"mchid"`
	SpAppID     string `json:"sp_appid"`
	SpMchID     string `json:"sp_mchid"`
	SubAppID    string `json:"sub_appid"`
	SubMchID    string `json:"sub_mchid"`
	Description string `json:"description"`
	OutTradeNo  string `json:"out_trade_no"`
	NotifyURL   string `json:"notify_url"`
	Amount      struct {
		Total    *int64 `json:"total"`
		Currency string `json:"currency"`
	} `json:"amount"`
	Payer struct {
		OpenID    string `json:"openid"`
		SpOpenID  string `json:"sp_openid"`
		SubOpenID string `json:"sub_openid"`
	} `json:"payer"`
}

func (p *Pay) jsapiLocked(body []byte, partner bool) (int, any) {
	var in jsapiOrder
	if err := json.Unmarshal(body, &in); err != nil {
		return http.StatusBadRequest, payError("PARAM_ERROR", "请求体不是合法的 JSON")
	}
	appid, mchid, openid := in.AppID, in.MchID, in.Payer.OpenID
	if partner {
		appid, mchid, openid = in.SpAppID, in.SpMchID, in.Payer.SpOpenID
		if in.SubMchID == "" {
			return http.StatusBadRequest, payError("PARAM_ERROR", "缺少参数 sub_mchid")
		}
		if in.Payer.SubOpenID != "" && in.SubAppID == "" {
			return http.StatusBadRequest, payError("PARAM_ERROR", "sub_openid 需要 sub_appid")
		}
	}
	switch {
	case mchid != p.opts.MchID:
		return http.StatusBadRequest, payError("PARAM_ERROR", "mchid 与请求的商户号不一致")
	case appid == "" || in.Description == "" || in.OutTradeNo == "" || in.NotifyURL == "":
		return http.StatusBadRequest, payError("PARAM_ERROR", "缺少必填参数")
	case in.Amount.Total == nil || *in.Amount.Total <= 0:
		return http.StatusBadRequest, payError("PARAM_ERROR", "amount.total 必须大于 0")
	case in.Amount.Currency != "" && in.Amount.Currency != "CNY":
		// A domestic merchant is paid in CNY only.
		return http.StatusBadRequest, payError("PARAM_ERROR", "amount.currency 仅支持 CNY")
	case openid == "" && in.Payer.SubOpenID == "":
		return http.StatusBadRequest, payError("PARAM_ERROR", "缺少参数 payer")
	case !strings.HasPrefix(in.NotifyURL, "http://") && !strings.HasPrefix(in.NotifyURL, "https://"):
		return http.StatusBadRequest, payError("PARAM_ERROR", "notify_url 格式不正确")
	}
	if p.opts.Payers != nil {
		subAppID := in.SubAppID
		if openid != "" && p.opts.Payers[openid] != appid || in.Payer.SubOpenID != "" && p.opts.Payers[in.Payer.SubOpenID] != subAppID {
			return http.StatusBadRequest, payError("PARAM_ERROR", "appid和openid不匹配")
		}
	}
	currency := in.Amount.Currency
	if currency == "" {
		currency = "CNY"
	}
	if o := p.orders[in.OutTradeNo]; o != nil {
		if o.State == "SUCCESS" || o.State == "REFUND" {
			return http.StatusBadRequest, payError("ORDERPAID", "该订单已支付")
		}
		if o.State == "CLOSED" {
			return http.StatusBadRequest, payError("ORDERCLOSED", "该订单已关闭")
		}
		// The same order placed again gets its prepay_id again; another
		// order under a number already used is refused, as WeChat Pay
		// refuses it.
		if o.Partner != partner || o.AppID != appid || o.SubAppID != in.SubAppID || o.SubMchID != in.SubMchID ||
			o.OpenID != openid || o.SubOpenID != in.Payer.SubOpenID || o.Description != in.Description ||
			o.NotifyURL != in.NotifyURL || o.Total != *in.Amount.Total || o.Currency != currency {
			return http.StatusBadRequest, payError("INVALID_REQUEST", "201 商户订单号重复")
		}
		return http.StatusOK, map[string]string{"prepay_id": o.PrepayID}
	}
	p.seq++
	o := &PayOrder{
		Partner: partner, AppID: appid, SubAppID: in.SubAppID, SubMchID: in.SubMchID,
		OpenID: openid, SubOpenID: in.Payer.SubOpenID, OutTradeNo: in.OutTradeNo,
		PrepayID:    fmt.Sprintf("wx%s%s%04d", p.opts.Now().In(chinaTime).Format("02150405"), randomAlnum(16), p.seq%10000),
		Description: in.Description, NotifyURL: in.NotifyURL,
		Total: *in.Amount.Total, Currency: currency, State: "NOTPAY",
	}
	p.orders[o.OutTradeNo] = o
	p.byPrepay[o.PrepayID] = o.OutTradeNo
	return http.StatusOK, map[string]string{"prepay_id": o.PrepayID}
}

func (p *Pay) transactionLocked(o *PayOrder) map[string]any {
	t := map[string]any{
		"mchid":            p.opts.MchID,
		"out_trade_no":     o.OutTradeNo,
		"trade_type":       "JSAPI",
		"trade_state":      o.State,
		"trade_state_desc": map[string]string{"NOTPAY": "未支付", "SUCCESS": "支付成功", "CLOSED": "已关闭", "REFUND": "转入退款"}[o.State],
		"attach":           "",
		"amount":           map[string]any{"total": o.Total, "currency": o.Currency},
	}
	payer := map[string]string{}
	if o.Partner {
		t["sp_mchid"], t["sp_appid"], t["sub_mchid"] = p.opts.MchID, o.AppID, o.SubMchID
		delete(t, "mchid")
		if o.SubAppID != "" {
			t["sub_appid"] = o.SubAppID
		}
		if o.OpenID != "" {
			payer["sp_openid"] = o.OpenID
		}
		if o.SubOpenID != "" {
			payer["sub_openid"] = o.SubOpenID
		}
	} else {
		t["appid"] = o.AppID
		payer["openid"] = o.OpenID
	}
	if o.TransactionID != "" {
		t["transaction_id"] = o.TransactionID
		t["bank_type"] = "OTHERS"
		t["success_time"] = o.SuccessTime.In(chinaTime).Format(time.RFC3339)
		t["payer"] = payer
		t["amount"] = map[string]any{"total": o.Total, "payer_total": o.Total, "currency": o.Currency, "payer_currency": o.Currency}
	}
	return t
}

func (p *Pay) queryLocked(o *PayOrder) (int, any) {
	if o == nil {
		return http.StatusNotFound, payError("ORDER_NOT_EXIST", "订单不存在")
	}
	return http.StatusOK, p.transactionLocked(o)
}

func (p *Pay) closeLocked(no string, body []byte) (int, any) {
	var in struct {
		MchID    string `json:"mchid"`
		SpMchID  string `json:"sp_mchid"`
		SubMchID string `json:"sub_mchid"`
	}
	if json.Unmarshal(body, &in) != nil || (in.MchID != p.opts.MchID && in.SpMchID != p.opts.MchID) {
		return http.StatusBadRequest, payError("PARAM_ERROR", "mchid 与请求的商户号不一致")
	}
	o := p.orders[no]
	switch {
	case o == nil:
		return http.StatusNotFound, payError("ORDER_NOT_EXIST", "订单不存在")
	case o.State == "SUCCESS" || o.State == "REFUND":
		return http.StatusBadRequest, payError("ORDERPAID", "订单已支付")
	}
	o.State = "CLOSED"
	return http.StatusNoContent, nil
}

func (p *Pay) refundLocked(body []byte) (int, any) {
	var in struct {
		TransactionID string `json:"transaction_id"`
		OutTradeNo    string `json:"out_trade_no"`
		OutRefundNo   string `json:"out_refund_no"`
		NotifyURL     string `json:"notify_url"`
		Amount        struct {
			Refund   int64  `json:"refund"`
			Total    int64  `json:"total"`
			Currency string `json:"currency"`
		} `json:"amount"`
	}
	if json.Unmarshal(body, &in) != nil || in.OutRefundNo == "" || (in.TransactionID == "" && in.OutTradeNo == "") {
		return http.StatusBadRequest, payError("PARAM_ERROR", "缺少必填参数")
	}
	no := in.OutTradeNo
	if in.TransactionID != "" {
		no = p.byTxn[in.TransactionID]
	}
	o := p.orders[no]
	switch {
	case in.Amount.Currency != "CNY":
		// A refund names its currency, and a domestic one is CNY.
		return http.StatusBadRequest, payError("PARAM_ERROR", "amount.currency 仅支持 CNY")
	case in.Amount.Refund <= 0:
		return http.StatusBadRequest, payError("PARAM_ERROR", "amount.refund 必须大于 0")
	case o == nil:
		return http.StatusNotFound, payError("RESOURCE_NOT_EXISTS", "订单不存在")
	case o.State != "SUCCESS" && o.State != "REFUND":
		return http.StatusForbidden, payError("NOT_ENOUGH", "订单未支付")
	case in.Amount.Total != o.Total:
		return http.StatusBadRequest, payError("PARAM_ERROR", "订单金额与退款金额不匹配")
	}
	if r := p.refunds[in.OutRefundNo]; r != nil {
		return http.StatusOK, p.refundJSON(r, "PROCESSING")
	}
	if in.Amount.Refund > o.Total-o.Refunded {
		return http.StatusForbidden, payError("NOT_ENOUGH", "可退金额不足")
	}
	o.Refunded += in.Amount.Refund
	o.State = "REFUND"
	p.seq++
	r := &PayRefund{
		RefundID:    fmt.Sprintf("50000%s%010d", randomDigits(9), p.seq),
		OutRefundNo: in.OutRefundNo, OutTradeNo: o.OutTradeNo, TransactionID: o.TransactionID,
		Refund: in.Amount.Refund, Total: o.Total, Currency: o.Currency, Created: p.opts.Now(),
		NotifyURL: in.NotifyURL,
	}
	if r.NotifyURL == "" {
		r.NotifyURL = o.NotifyURL
	}
	p.refunds[r.OutRefundNo] = r
	return http.StatusOK, p.refundJSON(r, "PROCESSING")
}

func (p *Pay) refundJSON(r *PayRefund, status string) map[string]any {
	out := map[string]any{
		"refund_id":             r.RefundID,
		"out_refund_no":         r.OutRefundNo,
		"transaction_id":        r.TransactionID,
		"out_trade_no":          r.OutTradeNo,
		"channel":               "ORIGINAL",
		"user_received_account": "支付用户零钱",
		"create_time":           r.Created.In(chinaTime).Format(time.RFC3339),
		"status":                status,
		"funds_account":         "AVAILABLE",
		"amount": map[string]any{
			"total": r.Total, "refund": r.Refund, "payer_total": r.Total, "payer_refund": r.Refund,
			"settlement_refund": r.Refund, "settlement_total": r.Total, "discount_refund": 0, "currency": r.Currency,
		},
	}
	if status == "SUCCESS" {
		out["success_time"] = r.Created.In(chinaTime).Format(time.RFC3339)
	}
	return out
}

func (p *Pay) certificatesLocked() (int, any) {
	res, err := SealPayResource(p.opts.APIv3Key, []byte(p.keys.CertPEM), "certificate", "")
	if err != nil {
		return http.StatusInternalServerError, payError("SYSTEM_ERROR", "系统错误")
	}
	return http.StatusOK, map[string]any{"data": []map[string]any{{
		"serial_no":           p.keys.CertSerial,
		"effective_time":      p.keys.Cert.NotBefore.In(chinaTime).Format(time.RFC3339),
		"expire_time":         p.keys.Cert.NotAfter.In(chinaTime).Format(time.RFC3339),
		"encrypt_certificate": res,
	}}}
}

var _ http.Handler = (*Pay)(nil)
