package wechatauth

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-wechat/wechatauth/internal/platform"
	"github.com/caddy-wechat/wechatauth/internal/wxpay"
	"github.com/caddy-wechat/wechatauth/wechattest"
)

// Merchant is a WeChat Pay merchant (商户) of the wechat app, with the
// values of its merchant console. Each value may be a placeholder, such as
// {env.WECHATPAY_APIV3_KEY} or {file./etc/caddy/apiclient_key.pem}, which
// keeps the key out of the config; keys are read once, when the config
// loads. With sandbox, give only mch_id: the keys are generated and a fake
// WeChat Pay knows them.
type Merchant struct {
	// The merchant number (商户号).
	MchID string `json:"mch_id"`

	// The merchant API private key, apiclient_key.pem (PKCS#8, RSA 2048).
	PrivateKey string `json:"private_key,omitempty"`

	// The serial number of the merchant API certificate (商户API证书序列号).
	SerialNo string `json:"serial_no,omitempty"`

	// The APIv3 key (APIv3密钥), 32 characters.
	APIv3Key string `json:"api_v3_key,omitempty"`

	// The WeChat Pay public key id (PUB_KEY_ID_…). With public_key,
	// answers and callbacks are verified with this key; without both,
	// with the platform certificates fetched from /v3/certificates. Give
	// it during a migration too: both are then accepted.
	PublicKeyID string `json:"public_key_id,omitempty"`

	// The WeChat Pay public key (pub_key.pem, a PUBLIC KEY block).
	PublicKey string `json:"public_key,omitempty"`
}

// payMerchant is a merchant as loaded: its keys and the way to WeChat Pay.
type payMerchant struct {
	*wxpay.Merchant
	base   string
	client *http.Client
	fake   *wechattest.Pay // sandbox only

	refreshMu   sync.Mutex
	lastRefresh time.Time
}

// certRefreshEvery bounds how often an unknown Wechatpay-Serial makes the
// platform certificates be fetched again.
const certRefreshEvery = time.Minute

// verifyAnswer checks a signed answer or callback. A serial the merchant
// does not know yet (certificates not fetched, or rotated) makes the
// platform certificates be fetched first, at most once a minute.
func (m *payMerchant) verifyAnswer(ctx context.Context, header http.Header, body []byte, now time.Time) error {
	if serial := strings.TrimSpace(header.Get("Wechatpay-Serial")); serial != "" && !m.knows(serial) {
		m.refresh(ctx)
	}
	return m.VerifyNotification(header, body, now)
}

func (m *payMerchant) knows(serial string) bool {
	return serial == m.PublicKeyID() || slices.Contains(m.CertificateSerials(), serial)
}

func (m *payMerchant) refresh(ctx context.Context) {
	m.refreshMu.Lock()
	defer m.refreshMu.Unlock()
	if time.Since(m.lastRefresh) < certRefreshEvery {
		return
	}
	m.lastRefresh = time.Now()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// A failure leaves the known certificates; the answer then fails
	// verification, which is what the caller sees.
	_ = m.RefreshCertificates(ctx, m.client, m.base)
}

// hasKeyLines reports whether any key line is given (a sandbox merchant
// takes none).
func (c Merchant) hasKeyLines() bool {
	return c.PrivateKey != "" || c.SerialNo != "" || c.APIv3Key != "" || c.PublicKeyID != "" || c.PublicKey != ""
}

// provisionMerchants loads the merchants' keys, once per config. Every
// error names the merchant and the field, never the key.
func (a *WeChatApp) provisionMerchants() error {
	if a.PayAPIBase != "" {
		u, err := url.Parse(a.PayAPIBase)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("wechat: pay_api_base %q is not an http(s) URL", a.PayAPIBase)
		}
	}
	a.payTransport = &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second,
	}
	a.merchants = make(map[string]*payMerchant, len(a.Merchants))
	repl := caddy.NewReplacer()
	for _, c := range a.Merchants {
		mchID := strings.TrimSpace(repl.ReplaceKnown(c.MchID, ""))
		if _, dup := a.merchants[mchID]; dup {
			return fmt.Errorf("wechat: merchant %s is configured twice", mchID)
		}
		m, err := a.loadMerchant("wechat", mchID, c, repl)
		if err != nil {
			return err
		}
		a.merchants[mchID] = m
	}
	return nil
}

// loadMerchant reads the keys of merchant mchID; module names whose
// config it is in the errors.
func (a *WeChatApp) loadMerchant(module, mchID string, c Merchant, repl *caddy.Replacer) (*payMerchant, error) {
	pm := &payMerchant{base: a.PayAPIBase, client: newPayClient(a.payTransport)}
	if pm.base == "" {
		pm.base = wxpay.DefaultAPIBase
	}
	var cfg wxpay.Config
	if a.Sandbox {
		if c.hasKeyLines() {
			return nil, fmt.Errorf("%s: merchant %s: sandbox generates the merchant's keys and takes none; remove the key lines or sandbox", module, mchID)
		}
		if mchID == "" || strings.Trim(mchID, "0123456789") != "" {
			return nil, fmt.Errorf("%s: mch_id must be the digits of a merchant number", module)
		}
		sb, err := platform.OpenPaySandbox(mchID)
		if err != nil {
			return nil, fmt.Errorf("%s: merchant %s: sandbox: %w", module, mchID, err)
		}
		a.sandboxHolds = append(a.sandboxHolds, mchID)
		pm.fake, pm.client, pm.base = sb.Pay, sb.Pay.Client(), "http://wechatpay.sandbox"
		cfg = wxpay.Config{
			MchID: mchID, PrivateKey: sb.PrivateKeyPEM, SerialNo: sb.SerialNo, APIv3Key: sb.APIv3Key,
			PublicKeyID: sb.Pay.Keys().PublicKeyID, PublicKey: sb.Pay.Keys().PublicKeyPEM,
		}
	} else {
		cfg = wxpay.Config{
			MchID:       mchID,
			PrivateKey:  repl.ReplaceKnown(c.PrivateKey, ""),
			SerialNo:    strings.TrimSpace(repl.ReplaceKnown(c.SerialNo, "")),
			APIv3Key:    repl.ReplaceKnown(c.APIv3Key, ""),
			PublicKeyID: strings.TrimSpace(repl.ReplaceKnown(c.PublicKeyID, "")),
			PublicKey:   repl.ReplaceKnown(c.PublicKey, ""),
		}
		if c.PrivateKey != "" && cfg.PrivateKey == "" {
			return nil, fmt.Errorf("%s: merchant %s: private_key resolves to nothing; fix its placeholder", module, mchID)
		}
		if c.APIv3Key != "" && cfg.APIv3Key == "" {
			return nil, fmt.Errorf("%s: merchant %s: api_v3_key resolves to nothing; fix its placeholder", module, mchID)
		}
	}
	m, err := wxpay.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", module, strings.TrimPrefix(err.Error(), "wxpay: "))
	}
	pm.Merchant = m
	return pm, nil
}

// handlerMerchant returns the merchant a handler pays as: its own when
// keys has key lines (mch_id then required), else the wechat app's
// merchant of mchID. module names the handler in errors.
func (a *WeChatApp) handlerMerchant(module, mchID string, keys *Merchant) (*payMerchant, error) {
	if keys == nil || !keys.hasKeyLines() {
		return a.merchant(module, mchID)
	}
	repl := caddy.NewReplacer()
	mchID = strings.TrimSpace(repl.ReplaceKnown(mchID, ""))
	if mchID == "" {
		return nil, fmt.Errorf("%s: mch_id is missing: the merchant's key lines need its merchant number", module)
	}
	if name := keys.literalSecret(); name != "" && !a.Sandbox {
		return nil, fmt.Errorf("%s: merchant %s: %s", module, mchID, literalSecretMessage(name))
	}
	return a.loadMerchant(module, mchID, *keys, repl)
}

// merchant returns the loaded merchant of mchID, for a handler's
// Provision; module names the handler in the error.
func (a *WeChatApp) merchant(module, mchID string) (*payMerchant, error) {
	if mchID == "" {
		if len(a.merchants) == 1 {
			for _, m := range a.merchants {
				return m, nil
			}
		}
		return nil, fmt.Errorf("%s: mch_id is missing: name the merchant of the wechat app whose keys to use", module)
	}
	m, ok := a.merchants[mchID]
	if !ok {
		return nil, fmt.Errorf("%s: mch_id %s is not a merchant of the wechat app: add `merchant %s { … }` to the wechat global option", module, mchID, mchID)
	}
	return m, nil
}

// payAppIDs are the appids orders may name: the apps of the wechat app
// (the sandbox app in sandbox mode).
func (a *WeChatApp) payAppIDs() map[string]bool {
	ids := make(map[string]bool, len(a.Apps))
	repl := caddy.NewReplacer()
	for _, app := range a.Apps {
		ids[strings.TrimSpace(repl.ReplaceKnown(app.AppID, ""))] = true
	}
	if a.Sandbox && len(a.Apps) == 0 {
		ids[sandboxAppID] = true
	}
	return ids
}

// sandboxPay returns the fake WeChat Pay that holds the order of
// prepayID, or nil.
func (a *WeChatApp) sandboxPay(prepayID string) (*wechattest.Pay, wechattest.PayOrder) {
	for _, m := range a.merchants {
		if m.fake == nil {
			continue
		}
		if o, ok := m.fake.OrderByPrepayID(prepayID); ok {
			return m.fake, o
		}
	}
	return nil, wechattest.PayOrder{}
}

// Cleanup gives back the sandbox merchants and closes idle connections
// to WeChat Pay.
func (a *WeChatApp) Cleanup() error {
	for _, id := range a.sandboxHolds {
		platform.ReleasePaySandbox(id)
	}
	a.sandboxHolds = nil
	if a.payTransport != nil {
		a.payTransport.CloseIdleConnections()
	}
	return nil
}

// parseMerchantBlock reads `merchant <mch_id> { … }` of the wechat option.
func parseMerchantBlock(d *caddyfile.Dispenser) (Merchant, error) {
	var m Merchant
	if !d.NextArg() {
		return m, d.Errf("merchant needs its mch_id: merchant <mch_id> { private_key …; serial_no …; api_v3_key …; public_key_id …; public_key … }")
	}
	m.MchID = d.Val()
	if d.NextArg() {
		return m, d.Errf("merchant takes one mch_id and a block")
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] {
			return m, d.Errf("merchant %s: %s is given twice", m.MchID, sub)
		}
		seen[sub] = true
		handled, err := merchantLine(d, sub, &m)
		if !handled {
			return m, d.Errf("merchant %s: unknown subdirective %q", m.MchID, sub)
		}
		if err != nil {
			return m, err
		}
	}
	return m, nil
}

// literalSecret names the first of a handler's private_key and
// api_v3_key written as it is rather than as a placeholder, or is "". A
// handler's lines are part of the http app's config, which Caddy writes
// whole into its DEBUG log ("adjusted config") before any handler loads:
// there these two keys are taken only as placeholders ({env.*}, {file.*}).
func (c Merchant) literalSecret() string {
	for _, f := range []struct{ name, value string }{{"private_key", c.PrivateKey}, {"api_v3_key", c.APIv3Key}} {
		if f.value != "" && !hasPlaceholder(f.value) {
			return f.name
		}
	}
	return ""
}

func literalSecretMessage(name string) string {
	return name + " is written as it is, and a handler's config is copied into Caddy's DEBUG log: give it as a placeholder, such as {env.WECHATPAY_APIV3_KEY} or {file./etc/caddy/apiclient_key.pem}, or move the merchant into the wechat global option"
}

// hasPlaceholder reports whether v holds a {…} placeholder.
func hasPlaceholder(v string) bool {
	i := strings.IndexByte(v, '{')
	return i >= 0 && strings.IndexByte(v[i:], '}') > 1
}

// handlerKeyLine reads a merchant key line of wechat_pay's or
// wechat_pay_notify's block as merchantLine does, refusing a private_key
// or api_v3_key written as it is (see literalSecret) while the Caddyfile
// is adapted, before Caddy can log it.
func handlerKeyLine(d *caddyfile.Dispenser, sub string, m *Merchant) (handled bool, err error) {
	handled, err = merchantLine(d, sub, m)
	if handled && err == nil {
		if name := m.literalSecret(); name == sub {
			err = d.Errf("%s", literalSecretMessage(name))
		}
	}
	return handled, err
}

// merchantLine reads the Caddyfile line sub into m when it is one of a
// merchant's key lines; handled is false when it is not.
func merchantLine(d *caddyfile.Dispenser, sub string, m *Merchant) (handled bool, err error) {
	var into *string
	switch sub {
	case "private_key":
		into = &m.PrivateKey
	case "serial_no":
		into = &m.SerialNo
	case "api_v3_key":
		into = &m.APIv3Key
	case "public_key_id":
		into = &m.PublicKeyID
	case "public_key":
		into = &m.PublicKey
	default:
		return false, nil
	}
	return true, oneArg(d, into)
}

// newPayClient is the client of WeChat Pay's API. WeChat Pay does not
// redirect: a redirect is answered as it is, never followed, so that a
// request (an order, with its amounts and payer) goes to no host but the
// configured one.
func newPayClient(rt http.RoundTripper) *http.Client {
	return &http.Client{
		Transport:     rt,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
