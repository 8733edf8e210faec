package wechatauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/apierr"
	"github.com/caddy-wechat/wechatauth/internal/metrics"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(PayGateway{})
	httpcaddyfile.RegisterHandlerDirective("wechat_pay", parsePayCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("wechat_pay", httpcaddyfile.Before, "respond")
}

// The bounds of what the pay gateway reads: WeChat Pay's requests and
// answers are small JSON documents.
const (
	payMaxBody   = 1 << 20
	payMaxAnswer = 4 << 20
)

// defaultPayTimeout is how long a call to WeChat Pay may take.
const defaultPayTimeout = 10 * time.Second

// PayGateway forwards an upstream's WeChat Pay APIv3 calls with the
// merchant's signature, and returns WeChat Pay's answer only when its
// signature verifies, as WeChat Cloud Hosting's certificate-free pay does:
// the upstream holds no merchant key, certificate or APIv3 key. A JSAPI or
// mini program order's answer gains the `payment` object that
// wx.requestPayment takes, signed.
//
// The gateway pays as the merchant: serve it only on a loopback or private
// address that only your upstreams reach. It answers every request it
// gets.
type PayGateway struct {
	// The merchant of the wechat app whose keys sign the calls; may be
	// left out when the wechat app has one merchant.
	MchID string `json:"mch_id,omitempty"`

	// The merchant's own key lines (private_key, serial_no, api_v3_key,
	// public_key_id, public_key, as in the wechat app's merchant block),
	// for a merchant the wechat app does not hold; mch_id is then
	// required. private_key and api_v3_key only as placeholders
	// ({env.*}, {file.*}): a handler's config is copied into Caddy's
	// DEBUG log. Default: the wechat app's merchant of mch_id.
	Keys *Merchant `json:"keys,omitempty"`

	// The WeChat Pay API paths forwarded: exact (/v3/refund/domestic/refunds)
	// or ending in /* for one or more segments below
	// (/v3/pay/transactions/*). Other paths, and any path holding "..",
	// ";", an encoded '/', '\' or '.', or a control character, are
	// answered 403 api_not_allowed and reach nothing.
	Allow []string `json:"allow,omitempty"`

	// How long to wait for WeChat Pay. Default: 10s
	Timeout caddy.Duration `json:"timeout,omitempty"`

	ctx      context.Context // done once the config is unloaded
	logger   *zap.Logger
	merchant *payMerchant
	appids   map[string]bool // the apps an order may name
	exact    map[string]bool
	prefixes []string // of /* entries, with the trailing '/'
}

// CaddyModule returns the Caddy module information.
func (PayGateway) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.wechat_pay",
		New: func() caddy.Module { return new(PayGateway) },
	}
}

// Provision takes the merchant from the wechat app and checks the allow
// list.
func (g *PayGateway) Provision(ctx caddy.Context) error {
	// First, so that a config refused below keeps the series on /metrics.
	if err := metrics.Init(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("wechat_pay: metrics: %w", err)
	}
	g.ctx, g.logger = ctx, ctx.Logger()
	if err := g.checkAllow(); err != nil {
		return err
	}
	if g.Timeout < 0 {
		return fmt.Errorf("wechat_pay: timeout must be a positive duration, not %s", time.Duration(g.Timeout))
	}
	if err := unitSlip("timeout", g.Timeout, time.Millisecond); err != nil {
		return fmt.Errorf("wechat_pay: %w", err)
	}
	if g.Timeout == 0 {
		g.Timeout = caddy.Duration(defaultPayTimeout)
	}
	app, err := loadApp(ctx)
	if err != nil {
		return err
	}
	if g.merchant, err = app.handlerMerchant("wechat_pay", g.MchID, g.Keys); err != nil {
		return err
	}
	g.appids = app.payAppIDs()
	if g.merchant.fake != nil {
		g.logger.Warn("wechat_pay sandbox is on: calls go to a fake WeChat Pay; never use this in production")
	}
	return nil
}

func (g *PayGateway) checkAllow() error {
	if len(g.Allow) == 0 {
		return fmt.Errorf("wechat_pay: allow lists no path, so nothing would be forwarded: list the WeChat Pay API paths your upstreams call, such as /v3/pay/transactions/*")
	}
	g.exact = make(map[string]bool, len(g.Allow))
	for _, p := range g.Allow {
		base, sub := strings.CutSuffix(p, "/*")
		if strings.Contains(base, "*") {
			return fmt.Errorf("wechat_pay: allow %q: a path is exact, or ends in /* for everything under it; a * elsewhere matches nothing but itself", p)
		}
		if !strings.HasPrefix(base, "/v3/") || !payPathOK(base) {
			return fmt.Errorf("wechat_pay: allow %q: a path is written as WeChat Pay documents it, under /v3/, such as /v3/pay/transactions/* or /v3/refund/domestic/refunds", p)
		}
		if sub {
			g.prefixes = append(g.prefixes, base+"/")
		} else {
			g.exact[base] = true
		}
	}
	return nil
}

// allowed returns the allow entry p matches, or "".
func (g *PayGateway) allowed(p string) string {
	if g.exact[p] {
		return p
	}
	for _, pre := range g.prefixes {
		if len(p) > len(pre) && strings.HasPrefix(p, pre) {
			return pre + "*"
		}
	}
	return ""
}

// payPathOK reports whether a request path, as sent, is one WeChat Pay's
// paths could be: segments of letters, digits and _ - . | * @ (an
// out_trade_no's characters), percent-escapes only of characters a client
// must or may escape (not of a letter, a digit, '-', '_', '~', '/', '\',
// '.', ';', '%' or a control character), no empty, "." or ".." segment.
// Anything else is a spelling another server may read as a different path:
// /v3/pay/transactions/js%61pi is the JSAPI order to a server that
// decodes it, and not to the gateway's own checks.
func payPathOK(p string) bool {
	if len(p) < 2 || p[0] != '/' {
		return false
	}
	segStart := 1
	for i := 1; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			seg := p[segStart:i]
			if seg == "" || seg == "." || seg == ".." {
				return false
			}
			segStart = i + 1
			continue
		}
		switch c := p[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '_', c == '-', c == '.', c == '|', c == '*', c == '@':
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return false
			}
			v := unhex(p[i+1])<<4 | unhex(p[i+2])
			if v < 0x20 || v >= 0x7f || v == '/' || v == '\\' || v == '.' || v == ';' || v == '%' ||
				'a' <= v && v <= 'z' || 'A' <= v && v <= 'Z' || '0' <= v && v <= '9' || v == '-' || v == '_' || v == '~' {
				return false
			}
			i += 2
		default:
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// jsapiOrderPaths are the orders whose answer gains the payment object of
// wx.requestPayment, and whose payer openid the gateway may fill.
var jsapiOrderPaths = map[string]bool{
	"/v3/pay/transactions/jsapi":         true,
	"/v3/pay/partner/transactions/jsapi": true,
}

// payMethods are the methods of WeChat Pay's APIv3.
var payMethods = map[string]bool{
	http.MethodGet: true, http.MethodPost: true, http.MethodPut: true, http.MethodPatch: true, http.MethodDelete: true,
}

var payMethodList = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// ServeHTTP forwards the call to WeChat Pay with the merchant's signature
// and writes the answer once its signature verifies. It never calls next.
func (g *PayGateway) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	target := r.RequestURI
	if target == "" {
		target = r.URL.RequestURI()
	}
	p, query, _ := strings.Cut(target, "?")
	label := "other"
	if payPathOK(p) && printableQuery(query) {
		if l := g.allowed(p); l != "" {
			label = l
		}
	}
	if label == "other" {
		after := apierr.Unwanted(w, r)
		g.answerError(w, r, label, apierr.PayNotAllowed)
		after()
		return nil
	}
	if !payMethods[r.Method] {
		// WeChat Pay's API has no HEAD or OPTIONS: such a call would come
		// back without the body its signature covers.
		after := apierr.Unwanted(w, r)
		g.answerError(w, r, label, apierr.Method.Allowing(payMethodList))
		after()
		return nil
	}
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		var aerr *apierr.Error
		body, aerr = apierr.ReadBodyUpTo(w, r, payMaxBody, apierr.PayloadTooLarge.WithMessage("The request body is larger than 1 MiB."))
		if aerr != nil {
			after := apierr.Unwanted(w, r)
			g.answerError(w, r, label, aerr)
			after()
			return nil
		}
	}
	var order payOrder
	if len(bytes.TrimSpace(body)) > 0 {
		var aerr *apierr.Error
		order, aerr = g.readOrder(body, jsapiOrderPaths[p], r.Header.Get("X-WX-OPENID"), r.Header.Get("X-WX-APPID"))
		if aerr != nil {
			g.answerError(w, r, label, aerr)
			return nil
		}
		body = order.body
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Duration(g.Timeout))
	defer cancel()
	resp, answer, err := g.call(ctx, r.Method, p, query, body)
	if err != nil {
		if !errors.Is(err, errPayAnswer) {
			g.logger.Warn("WeChat Pay did not answer", zap.String("path", p), zap.Error(err))
			g.answerError(w, r, label, apierr.PayUnavailable)
			return nil
		}
		g.logger.Warn("WeChat Pay's answer is refused", zap.String("path", p), zap.Error(err))
		g.answerError(w, r, label, apierr.PaySignatureInvalid)
		return nil
	}
	if jsapiOrderPaths[p] && resp.StatusCode == http.StatusOK && order.payAppID != "" {
		if withPayment, ok := g.addPayment(answer, order.payAppID); ok {
			answer = withPayment
		}
	}
	h := w.Header()
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		h.Set("Content-Type", ct)
	}
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(answer)))
	w.WriteHeader(resp.StatusCode)
	w.Write(answer)
	metrics.PayRequests.WithLabelValues(label, payResult(resp.StatusCode, answer)).Inc()
	g.sandboxRefunded(r.Method, p, resp.StatusCode, answer)
	return nil
}

// errPayAnswer marks an answer that came but is not passed on.
var errPayAnswer = errors.New("answer refused")

// call sends one signed call to WeChat Pay and returns its answer once the
// signature over it verifies.
func (g *PayGateway) call(ctx context.Context, method, p, query string, body []byte) (*http.Response, []byte, error) {
	m := g.merchant
	u, err := url.Parse(strings.TrimSuffix(m.base, "/") + p)
	if err != nil {
		return nil, nil, err
	}
	u.RawQuery = query
	var rd io.Reader
	if len(body) > 0 {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, nil, err
	}
	// The signature covers the request target exactly as it is sent.
	authz, err := m.SignRequest(method, req.URL.RequestURI(), body, time.Now(), "")
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", authz)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "caddy-wechatauth")
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	if m.NeedsCertificates() && m.WechatpaySerial() == "" {
		m.refresh(ctx)
	}
	if serial := m.WechatpaySerial(); serial != "" {
		req.Header.Set("Wechatpay-Serial", serial)
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return nil, nil, fmt.Errorf("HTTP status %d: WeChat Pay does not redirect", resp.StatusCode)
	}
	answer, err := io.ReadAll(io.LimitReader(resp.Body, payMaxAnswer+1))
	if err != nil {
		return nil, nil, err
	}
	if len(answer) > payMaxAnswer {
		return nil, nil, errors.Join(errPayAnswer, errors.New("answer larger than 4 MiB"))
	}
	if err := m.verifyAnswer(ctx, resp.Header, answer, time.Now()); err != nil {
		if ctx.Err() != nil {
			// The certificates to judge it by did not come in time.
			return nil, nil, fmt.Errorf("verifying the answer: %w", ctx.Err())
		}
		return nil, nil, errors.Join(errPayAnswer, err)
	}
	// A signature binds the answer, not the call it answers: one genuine
	// answer must not come back as another call's.
	if !m.answers.First(strings.TrimSpace(resp.Header.Get("Wechatpay-Timestamp")), strings.TrimSpace(resp.Header.Get("Wechatpay-Nonce")), answer, time.Now()) {
		return nil, nil, errors.Join(errPayAnswer, errors.New("an answer already taken came again"))
	}
	if !answerFitsCall(method, p, query, body, resp.StatusCode, answer) {
		return nil, nil, errors.Join(errPayAnswer, errors.New("the answer is about another order, transaction or refund than the call"))
	}
	return resp, answer, nil
}

// payOrder is what the gateway reads of a request body.
type payOrder struct {
	body     []byte // as forwarded: as sent, or with the payer filled
	payAppID string // whose payment object a JSAPI order's answer gets
}

// readOrder checks the appids a body names against the apps of the
// config, and for a JSAPI order without a payer openid fills it with
// openid (the verified caller the upstream passes on).
func (g *PayGateway) readOrder(body []byte, jsapi bool, openid, openidApp string) (payOrder, *apierr.Error) {
	type member struct {
		name string
		raw  json.RawMessage
	}
	var members []member
	var appid, spAppID, subAppID string
	var payer json.RawMessage
	err := apierr.WalkObject(body, func(name string, dec *json.Decoder) error {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return apierr.ErrNotObject
		}
		if c := caseVariant(name, "appid", "sp_appid", "sub_appid", "payer"); c != "" {
			return caseVariantError(c)
		}
		switch name {
		case "appid", "sp_appid", "sub_appid":
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return &apierr.FieldError{Name: name}
			}
			// A member given names an app: "" or null names none, and
			// would let the order through unchecked.
			if s == "" {
				return emptyAppIDError(name)
			}
			switch name {
			case "appid":
				appid = s
			case "sp_appid":
				spAppID = s
			default:
				subAppID = s
			}
		case "payer":
			payer = raw
		}
		members = append(members, member{name, raw})
		return nil
	})
	var fe *apierr.FieldError
	var empty emptyAppIDError
	var variant caseVariantError
	switch {
	case errors.As(err, &fe):
		return payOrder{}, apierr.InvalidRequest.WithMessage(fe.Error())
	case errors.As(err, &empty):
		return payOrder{}, apierr.InvalidRequest.WithMessage(empty.Error())
	case errors.As(err, &variant):
		return payOrder{}, apierr.InvalidRequest.WithMessage(variant.Error())
	case err != nil:
		return payOrder{}, apierr.InvalidRequest.WithMessage("The body must be one JSON object.")
	}
	for _, id := range []string{appid, spAppID, subAppID} {
		if id != "" && !g.appids[id] {
			return payOrder{}, apierr.InvalidRequest.WithMessage("The order names an appid that is not an app of this server's wechat configuration.")
		}
	}
	o := payOrder{body: body, payAppID: appid}
	partner := spAppID != "" || subAppID != ""
	if partner {
		o.payAppID = spAppID
		if subAppID != "" {
			o.payAppID = subAppID
		}
	}
	if !jsapi || openid == "" {
		return o, nil
	}
	field, fieldApp := "openid", appid
	if partner {
		field, fieldApp = "sp_openid", spAppID
		if subAppID != "" {
			field, fieldApp = "sub_openid", subAppID
		}
	}
	filled, changed, aerr := fillPayer(payer, field, openid)
	if aerr != nil || !changed {
		return o, aerr
	}
	// An openid belongs to one app: the caller's is filled in only for an
	// order of that app (when X-WX-APPID says which), never sent as the
	// payer of another app's order, which WeChat Pay refuses.
	if openidApp != "" && openidApp != fieldApp {
		return o, apierr.InvalidRequest.WithMessage("The order's payer " + field + " is missing, and the caller's openid (X-WX-OPENID) belongs to another app than the order's: give payer." + field + ".")
	}
	var b bytes.Buffer
	b.WriteByte('{')
	wrote := false
	for _, m := range members {
		if wrote {
			b.WriteByte(',')
		}
		name, _ := json.Marshal(m.name)
		b.Write(name)
		b.WriteByte(':')
		if m.name == "payer" {
			b.Write(filled)
		} else {
			b.Write(m.raw)
		}
		wrote = true
	}
	if payer == nil {
		if wrote {
			b.WriteByte(',')
		}
		b.WriteString(`"payer":`)
		b.Write(filled)
	}
	b.WriteByte('}')
	o.body = b.Bytes()
	return o, nil
}

// emptyAppIDError is an order's appid, sp_appid or sub_appid given as ""
// or null.
type emptyAppIDError string

// caseVariantError refuses a member named as one the gateway checks or
// fills, spelt otherwise ("APPID", "Payer", "subAppid", "sub-appid"): a
// lenient reader, matching names without case (Go's encoding/json, the
// sandbox's) or without '_' and '-' (fastjson's smart match), would take
// it for the member the gateway never saw.
type caseVariantError string

func (e caseVariantError) Error() string {
	return "The order gives " + string(e) + " spelt otherwise (letter case, '_' or '-'): spell it " + string(e) + "."
}

// caseVariant returns the one of names that name spells otherwise, or "".
func caseVariant(name string, names ...string) string {
	for _, n := range names {
		if name != n && strings.EqualFold(looseName.Replace(name), looseName.Replace(n)) {
			return n
		}
	}
	return ""
}

// looseName drops what a lenient reader ignores in a member's name.
var looseName = strings.NewReplacer("_", "", "-", "")

func (e emptyAppIDError) Error() string {
	return "The field " + string(e) + " must name an app of this server's wechat configuration; leave it out rather than give it empty or null."
}

// fillPayer returns the payer object with field set to openid when the
// order gives no openid of its own (none of openid, sp_openid,
// sub_openid, or only as "" or null, which are dropped), and whether it
// changed.
func fillPayer(payer json.RawMessage, field, openid string) (json.RawMessage, bool, *apierr.Error) {
	members := map[string]json.RawMessage{}
	var order []string
	if payer != nil {
		err := apierr.WalkObject(payer, func(name string, dec *json.Decoder) error {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return apierr.ErrNotObject
			}
			if c := caseVariant(name, "openid", "sp_openid", "sub_openid"); c != "" {
				return caseVariantError("payer." + c)
			}
			members[name] = raw
			order = append(order, name)
			return nil
		})
		var fe *apierr.FieldError
		var variant caseVariantError
		switch {
		case errors.As(err, &fe):
			return nil, false, apierr.InvalidRequest.WithMessage("payer: " + fe.Error())
		case errors.As(err, &variant):
			return nil, false, apierr.InvalidRequest.WithMessage(variant.Error())
		case err != nil:
			return nil, false, apierr.InvalidRequest.WithMessage("The order's payer must be a JSON object.")
		}
	}
	for _, f := range []string{"openid", "sp_openid", "sub_openid"} {
		if raw, ok := members[f]; ok && !emptyJSON(raw) {
			return payer, false, nil
		}
	}
	v, _ := json.Marshal(openid)
	var b bytes.Buffer
	b.WriteByte('{')
	for _, name := range order {
		switch name {
		case "openid", "sp_openid", "sub_openid":
			continue // empty, else returned above
		}
		n, _ := json.Marshal(name)
		b.Write(n)
		b.WriteByte(':')
		b.Write(members[name])
		b.WriteByte(',')
	}
	b.WriteString(`"` + field + `":`)
	b.Write(v)
	b.WriteByte('}')
	return b.Bytes(), true, nil
}

// emptyJSON reports whether raw is "" or null.
func emptyJSON(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return string(raw) == `""` || string(raw) == "null"
}

// addPayment returns the answer, a JSON object holding prepay_id, with the
// signed payment object of wx.requestPayment added as its last member. An
// answer that names a member twice, or has a payment member already, gets
// none: which prepay_id it means is a reader's guess.
func (g *PayGateway) addPayment(answer []byte, appid string) ([]byte, bool) {
	var prepayID string
	trimmed := bytes.TrimRight(answer, " \t\r\n")
	err := apierr.WalkObject(trimmed, func(name string, dec *json.Decoder) error {
		switch name {
		case "prepay_id":
			return apierr.DecodeString(name, dec, &prepayID)
		case "payment":
			return errors.New("the answer has a payment member")
		}
		return apierr.SkipValue(dec)
	})
	if err != nil || prepayID == "" || len(trimmed) < 2 || trimmed[len(trimmed)-1] != '}' {
		if err != nil {
			g.logger.Warn("no payment object for an answer that is not a plain object", zap.Error(err))
		}
		return nil, false
	}
	pay, err := g.merchant.PaySign(appid, prepayID, time.Now(), "")
	if err != nil {
		g.logger.Warn("no payment object for the order's answer", zap.Error(err))
		return nil, false
	}
	pj, _ := json.Marshal(pay)
	out := make([]byte, 0, len(trimmed)+len(pj)+12)
	out = append(out, trimmed[:len(trimmed)-1]...)
	out = append(out, `,"payment":`...)
	out = append(out, pj...)
	return append(out, '}'), true
}

// answerError writes one of the gateway's own error answers.
func (g *PayGateway) answerError(w http.ResponseWriter, r *http.Request, label string, ae *apierr.Error) {
	apierr.Write(w, r, ae)
	metrics.PayRequests.WithLabelValues(label, ae.Code()).Inc()
}

// payCodeLabels bounds the error codes the pay gateway's metric counts
// under a label of their own.
var payCodeLabels = metrics.Labels{Max: 100}

// payResult is the metric's result of a verified answer: ok, WeChat
// Pay's error code, or unavailable for a 5xx without one. Labels stay a
// bounded set whatever WeChat Pay sends.
func payResult(status int, answer []byte) string {
	if status < 300 {
		return "ok"
	}
	var e struct {
		Code string `json:"code"`
	}
	if json.Unmarshal(answer, &e) == nil && e.Code != "" && len(e.Code) <= 40 && strings.Trim(e.Code, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") == "" {
		return payCodeLabels.Of(e.Code)
	}
	if status >= 500 {
		return "unavailable"
	}
	return "other"
}

// printableQuery reports whether a query is visible ASCII without
// spaces or a '#'.
func printableQuery(q string) bool {
	for i := 0; i < len(q); i++ {
		if q[i] <= ' ' || q[i] >= 0x7f || q[i] == '#' {
			return false
		}
	}
	return true
}

// Interface guards
var (
	_ caddy.Provisioner           = (*PayGateway)(nil)
	_ caddyhttp.MiddlewareHandler = (*PayGateway)(nil)
	_ caddy.Module                = (*PayGateway)(nil)
	_ caddyfile.Unmarshaler       = (*PayGateway)(nil)
)
