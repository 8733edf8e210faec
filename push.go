package wechatauth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/apierr"
	"github.com/caddy-wechat/wechatauth/internal/audit"
	"github.com/caddy-wechat/wechatauth/internal/idheader"
	"github.com/caddy-wechat/wechatauth/internal/metrics"
	"github.com/caddy-wechat/wechatauth/internal/msgcrypt"
	"github.com/caddy-wechat/wechatauth/internal/outbox"
	"github.com/caddy-wechat/wechatauth/wechat"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(Push{})
	httpcaddyfile.RegisterHandlerDirective("wechat_push", parsePushCaddyfile)
	// Before wechat_auth (which sits just before basic_auth): WeChat's
	// pushes carry no token.
	httpcaddyfile.RegisterDirectiveOrder("wechat_push", httpcaddyfile.After, "try_files")
}

// Push defaults.
const (
	defaultPushMaxAge = 5 * time.Minute
	maxPushBody       = 1 << 20
)

// Push receives WeChat's message pushes (消息推送) for one mini program or
// Official Account: it answers the console's URL check, verifies each
// push's signature, decrypts it in safe mode, and delivers the plaintext
// to the upstream at least once, through its restarts and Caddy's, the
// way WeChat Cloud Hosting hands pushes to a container. WeChat is
// answered only once the push is delivered or safely queued. It answers
// every request it gets: give it a path matcher.
type Push struct {
	// The appid whose pushes these are: the trailing appid of every
	// decrypted push must be this one, and the upstream gets it as
	// X-WX-APPID. Default: the wechat app's app, when it has exactly one.
	AppID string `json:"app_id,omitempty"`

	// The console's Token (令牌). Required. Write a placeholder such as
	// {env.WECHAT_PUSH_TOKEN}: this module never logs it, but a value
	// written in the config itself is in Caddy's DEBUG log of the config.
	Token string `json:"token,omitempty"`

	// The console's EncodingAESKey (消息加密密钥), 43 characters, for
	// compatibility and safe mode; then every push must carry Encrypt, and
	// only its decrypted copy is trusted. Omit it in plain mode. Write a
	// placeholder, as for the token.
	AESKey string `json:"aes_key,omitempty"`

	// Plain mode only, where the signature does not cover the body: a push
	// whose timestamp is further than this from now is refused, and so is
	// a signature seen before with another body or already answered.
	// Default: 5m; 0 turns the age check off (signatures are then
	// remembered for 24 h).
	MaxAge *caddy.Duration `json:"max_age,omitempty"`

	DeliveryConfig

	token   string
	crypter *msgcrypt.Crypter // nil in plain mode
	maxAge  time.Duration
	logger  *zap.Logger
	audit   *zap.Logger

	warnEncrypted *sync.Once // an encrypted push in plain mode was logged (made in Provision)

	app   *WeChatApp // this config's, which lists its receivers
	twins *twinList  // plainTwins' answer, found once (made in Provision)
}

type twinList struct {
	once sync.Once
	of   []*Push
}

// CaddyModule returns the Caddy module information.
func (Push) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.wechat_push",
		New: func() caddy.Module { return new(Push) },
	}
}

// Provision judges the settings and registers the delivery outbox, which
// the wechat app opens when it starts.
func (p *Push) Provision(ctx caddy.Context) error {
	// First, so that a config refused below keeps the series on /metrics.
	if err := metrics.Init(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("wechat_push: metrics: %w", err)
	}
	p.logger = ctx.Logger()
	p.audit = newAuditLogger(ctx)
	p.warnEncrypted = new(sync.Once)
	app, err := loadApp(ctx)
	if err != nil {
		return err
	}
	if p.AppID == "" && len(app.Apps) == 1 {
		p.AppID = app.Apps[0].AppID
	}
	if err := p.check(); err != nil {
		return err
	}
	warnLiteralSecrets(p.logger, "wechat_push", append([]string{"token", p.Token, "aes_key", p.AESKey}, p.DeliveryConfig.secretFields()...)...)
	if err := p.DeliveryConfig.open(ctx, app, "wechat_push", "push", p.AppID); err != nil {
		return err
	}
	p.app, p.twins = app, new(twinList)
	app.pushes = append(app.pushes, p)
	return nil
}

// plainTwins are the other plain-mode wechat_push handlers of this
// config with the same token, whatever their app or store: the signature
// on this receiver's URLs covers the token, timestamp and nonce alone
// (access logs hold it), so it is valid there too, with any body. Every
// handler of a config is provisioned before the first request, so the
// list is complete when it is first asked for.
func (p *Push) plainTwins() []*Push {
	if p.twins == nil {
		return nil
	}
	p.twins.once.Do(func() {
		for _, q := range p.app.pushes {
			// A plain receiver of the same app shares p's seen-set keys
			// when p is plain too: p's own record covers it, and closing
			// the pair there would refuse WeChat's retry of p's push.
			same := p.crypter == nil && q.AppID == p.AppID
			if q != p && q.crypter == nil && !same && q.token == p.token {
				p.twins.of = append(p.twins.of, q)
			}
		}
	})
	return p.twins.of
}

// closeTwinPairs records the (timestamp, nonce) of a request this
// receiver verified in each plain twin's seen set (in the twin's store),
// with the twin's own window, as that twin would have had it come there.
func (p *Push) closeTwinPairs(r *http.Request, ts, nonce string) {
	for _, q := range p.plainTwins() {
		q.closePair(r, ts, nonce)
	}
}

// check resolves the placeholders and refuses what cannot work, naming
// the setting but never a secret.
func (p *Push) check() error {
	repl := caddy.NewReplacer()
	resolve := func(v string) string { return strings.TrimSpace(repl.ReplaceKnown(v, "")) }
	p.AppID = resolve(p.AppID)
	p.token = resolve(p.Token)
	aesKey := resolve(p.AESKey)
	idProblem := appIDProblem(p.AppID)
	var maxAgeSlip error
	if p.MaxAge != nil {
		maxAgeSlip = unitSlip("max_age", *p.MaxAge, time.Second)
	}
	switch {
	case p.token == "":
		return errors.New("wechat_push: token is missing (or its placeholder resolves to nothing): give the console's Token, e.g. token {env.WECHAT_PUSH_TOKEN}")
	case p.AppID == "":
		return errors.New("wechat_push: app_id is missing: name the app whose pushes these are (or give the wechat app exactly one app)")
	case idProblem != "":
		return errors.New("wechat_push: app_id " + idProblem)
	case p.MaxAge != nil && *p.MaxAge < 0:
		return errors.New("wechat_push: max_age must not be negative (0 turns the age check off)")
	case maxAgeSlip != nil:
		return fmt.Errorf("wechat_push: %w (0 turns the age check off)", maxAgeSlip)
	case p.AESKey != "" && aesKey == "":
		return errors.New("wechat_push: aes_key's placeholder resolves to nothing: give the console's EncodingAESKey (43 characters), or remove the line in plain mode")
	}
	if aesKey != "" {
		if _, err := msgcrypt.ParseAESKey(aesKey); err != nil {
			// msgcrypt's error gives the length, never the key.
			return fmt.Errorf("wechat_push: aes_key: %w", err)
		}
		c, err := msgcrypt.New(p.token, aesKey, p.AppID)
		if err != nil {
			return fmt.Errorf("wechat_push: %w", err)
		}
		p.crypter = c
	}
	p.maxAge = defaultPushMaxAge
	if p.MaxAge != nil {
		p.maxAge = time.Duration(*p.MaxAge)
	}
	return nil
}

// pushSource is X-WX-SOURCE on every delivered push.
const pushSource = "wx_push"

// ServeHTTP answers the console's URL check (GET) and WeChat's pushes
// (POST). It never calls next.
func (p *Push) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	q := r.URL.Query()
	switch r.Method {
	case http.MethodGet:
		// A body the answer does not need is read first: closing the
		// connection under a sender still sending would reset it and
		// lose the answer (see apierr.Unwanted).
		after := apierr.Unwanted(w, r)
		r, done := p.delivery.serve(r)
		defer done()
		p.urlCheck(w, r, q.Get("signature"), q.Get("timestamp"), q.Get("nonce"), q.Get("echostr"))
		after()
		return nil
	case http.MethodPost:
	default:
		apierr.Refuse(w, r, apierr.Method.Allowing([]string{http.MethodGet, http.MethodPost}))
		return nil
	}
	r, done := p.delivery.serve(r)
	defer done()
	body, aerr := apierr.ReadBodyUpTo(w, r, maxPushBody, apierr.PushTooLarge)
	if aerr != nil {
		after := apierr.Unwanted(w, r)
		p.refuse(w, r, aerr)
		after()
		return nil
	}
	msg, format, seen, aerr := p.open(r, q, body)
	if aerr != nil {
		p.refuse(w, r, aerr)
		return nil
	}
	switch taken := p.deliver(w, r, q.Get("nonce"), msg, format); {
	case taken && seen.key != "":
		p.settle(r.Context(), seen)
	case !taken && seen.recorded:
		p.unsee(r.Context(), seen.key)
	}
	return nil
}

// urlCheck answers the console's check of the URL: echostr when the
// signature over token, timestamp and nonce holds. The same check serves
// every mode.
func (p *Push) urlCheck(w http.ResponseWriter, r *http.Request, sig, ts, nonce, echostr string) {
	if sig == "" || echostr == "" || !msgcrypt.VerifySignature(sig, p.token, ts, nonce) {
		p.refuse(w, r, apierr.PushRefused)
		return
	}
	if p.crypter == nil {
		p.closePair(r, ts, nonce)
	}
	p.closeTwinPairs(r, ts, nonce)
	// A signature triple seen once (access logs hold them) echoes any
	// echostr, so the echo is text that no browser may sniff into a page.
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(echostr))
	audit.Event(p.audit, r, "push", "url_check", p.AppID, "", "")
}

// open verifies a push and returns its plaintext and the format it came
// in (the envelope's, which the passive reply follows). Safe and
// compatibility mode (aes_key set) trust only the decrypted Encrypt,
// checked by msg_signature; plain mode checks signature, the timestamp's
// age and that (timestamp, nonce) is new or came with this very body,
// since its signature does not cover the body; seen is then its place in
// the seen set (none in safe and compatibility mode).
func (p *Push) open(r *http.Request, q url.Values, body []byte) (_ []byte, _ msgcrypt.Format, seen seenPlace, _ *apierr.Error) {
	ts, nonce := q.Get("timestamp"), q.Get("nonce")
	if p.crypter != nil {
		env, err := msgcrypt.ParseEnvelope(body)
		if err != nil {
			return nil, 0, seenPlace{}, apierr.InvalidRequest.WithMessage("The body is not a WeChat push in XML or JSON.")
		}
		if env.Encrypt == "" {
			return nil, 0, seenPlace{}, apierr.PushRefused
		}
		msg, err := p.crypter.Open(q.Get("msg_signature"), ts, nonce, env.Encrypt)
		switch {
		case errors.Is(err, msgcrypt.ErrMalformed):
			return nil, 0, seenPlace{}, apierr.InvalidRequest.WithMessage("Encrypt is not base64.")
		case err != nil:
			return nil, 0, seenPlace{}, apierr.PushRefused
		}
		if _, err := msgcrypt.Sniff(msg); err != nil {
			return nil, 0, seenPlace{}, apierr.InvalidRequest.WithMessage("The decrypted push is not XML or JSON.")
		}
		p.closeTwinPairs(r, ts, nonce)
		return msg, env.Format, seenPlace{}, nil
	}
	if !msgcrypt.VerifySignature(q.Get("signature"), p.token, ts, nonce) {
		return nil, 0, seenPlace{}, apierr.PushRefused
	}
	format, err := msgcrypt.Sniff(body)
	if err != nil {
		return nil, 0, seenPlace{}, apierr.InvalidRequest.WithMessage("The body is not a WeChat push in XML or JSON.")
	}
	if env, err := msgcrypt.ParseEnvelope(body); err == nil && env.Encrypt != "" {
		if ev, _, err := msgcrypt.ParseEvent(body); err == nil && ev.ID() == "" {
			// Safe mode in the console, plain mode here: the envelope
			// alone would reach the upstream.
			p.warnEncrypted.Do(func() {
				p.logger.Warn("wechat_push: a push came encrypted (safe mode) but aes_key is not set: set aes_key to the console's EncodingAESKey; such pushes are refused")
			})
			return nil, 0, seenPlace{}, apierr.PushRefused
		}
	}
	seen, aerr := p.fresh(r, ts, nonce, body)
	if aerr != nil {
		return nil, 0, seenPlace{}, aerr
	}
	p.closeTwinPairs(r, ts, nonce)
	return body, format, seen, nil
}

// deliver hands a verified push to the outbox and answers WeChat: the
// upstream's passive reply when the first delivery gave one, else
// success; an error answer, which WeChat retries, when the push could be
// neither delivered nor queued. It reports whether the push was taken
// (delivered, queued, or one taken before).
func (p *Push) deliver(w http.ResponseWriter, r *http.Request, nonce string, msg []byte, format msgcrypt.Format) bool {
	ev, plain, err := msgcrypt.ParseEvent(msg)
	if err == nil && plain == msgcrypt.JSON && wechat.RepeatsMember(msg) {
		err = msgcrypt.ErrMalformed
	}
	if err != nil {
		p.refuse(w, r, apierr.InvalidRequest.WithMessage("The push is not well-formed XML or JSON, or gives a field twice."))
		return false
	}
	if !headerSafe(ev.FromUserName, ev.MsgID, ev.JobMsgID, ev.CreateTime, ev.Event, ev.TraceID) {
		// Taken, it could never be delivered: its headers would not be.
		p.refuse(w, r, apierr.InvalidRequest.WithMessage("The push's sender or event id holds characters a header cannot carry."))
		return false
	}
	// WeChat's retries of one event are byte for byte the same plaintext,
	// so its hash tells a retry from another event.
	sum := sha256.Sum256(msg)
	hash := hex.EncodeToString(sum[:16])
	id := ev.ID()
	if id == "" {
		// Nothing names the event: its bytes do.
		id = "sha256:" + hash
	}
	// The key WeChat's retries are recognised by: MsgIds are unique only
	// within an app, and an event without one (FromUserName:CreateTime:
	// Event) need not be unique at all, two in one second being two events.
	// A job's MsgID comes from other numberings than messages' MsgIds, so
	// such an event goes by its bytes too.
	key := p.AppID + ":msg:" + ev.MsgID
	if ev.MsgID == "" {
		key = p.AppID + ":sha256:" + hash
	}
	openid := ev.FromUserName
	if strings.HasPrefix(openid, "gh_") {
		openid = "" // an account's original id, not a user
	}
	h := make(http.Header, 6)
	// The upstream gets the plaintext's own type: inside an envelope it
	// need not be the envelope's, which the passive reply follows.
	if plain == msgcrypt.JSON {
		h["Content-Type"] = []string{"application/json"}
	} else {
		h["Content-Type"] = []string{"text/xml"}
	}
	h[idheader.Source] = []string{pushSource}
	h["X-Wx-Appid"] = []string{p.AppID}
	if openid != "" {
		h["X-Wx-Openid"] = []string{openid}
	}
	h["X-Wx-Event-Id"] = []string{id}
	res, err := p.delivery.accept(r.Context(), id, key, h, msg)
	kind := ev.Event
	if kind == "" {
		kind = "message"
	}
	fields := []zap.Field{zap.String("event_id", id), zap.String("event_type", kind)}
	if err != nil || res.Status == outbox.Busy {
		result := res.Status.String() // busy: another instance delivers it now
		if err != nil {
			result = "failed"
			p.logger.Error("wechat_push: push neither delivered nor queued; WeChat will retry",
				zap.String("event_id", id), zap.Error(err))
		}
		audit.Event(p.audit, r, "push", result, p.AppID, openid, "", fields...)
		apierr.Write(w, r, apierr.DeliveryUnavailable)
		return false
	}
	audit.Event(p.audit, r, "push", res.Status.String(), p.AppID, openid, "", fields...)
	// White space alone, or "success", is no reply; any other body is
	// passed on byte for byte, white space included.
	reply := res.Body
	if trimmed := bytes.TrimSpace(reply); res.Status != outbox.Delivered || len(trimmed) == 0 || string(trimmed) == "success" {
		writeSuccess(w)
		return true
	}
	if p.crypter != nil {
		sealed, err := p.crypter.Seal(reply, strconv.FormatInt(time.Now().Unix(), 10), nonce, format)
		if err != nil {
			// Only an unusable nonce gets here; WeChat gets no reply.
			p.logger.Warn("wechat_push: cannot seal the passive reply; answering success", zap.String("event_id", id), zap.Error(err))
			writeSuccess(w)
			return true
		}
		reply = sealed
	}
	if format == msgcrypt.JSON {
		w.Header().Set("Content-Type", "application/json")
	} else {
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	}
	w.WriteHeader(http.StatusOK)
	w.Write(reply)
	return true
}

func writeSuccess(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte("success"))
}

// refuse answers a push that was not taken, and audits it with the code.
func (p *Push) refuse(w http.ResponseWriter, r *http.Request, e *apierr.Error) {
	audit.Event(p.audit, r, "push", e.Code(), p.AppID, "", "")
	apierr.Write(w, r, e)
}

// headerSafe reports whether every value may go into a delivery's headers
// (X-WX-OPENID, X-WX-EVENT-ID and the like): visible ASCII only, as
// openids, MsgIds, event names and notification ids are. Anything else,
// a CR or LF above all, would make every delivery attempt fail.
func headerSafe(values ...string) bool {
	for _, v := range values {
		if len(v) > 256 {
			return false
		}
		for i := 0; i < len(v); i++ {
			if v[i] < 0x21 || v[i] > 0x7e {
				return false
			}
		}
	}
	return true
}

// fresh refuses a plain-mode push whose timestamp is older (or further
// ahead) than max_age, or not written canonically, or whose signature was
// seen before, on any instance sharing the store, with another body or by
// a request that was answered (settle). The same signature with the same
// body, not yet answered, is WeChat's retry of a push whose first try got
// no answer (its instance died while delivering it): it goes on, and the
// outbox's deduplication tells whether it was taken.
func (p *Push) fresh(r *http.Request, ts, nonce string, body []byte) (seenPlace, *apierr.Error) {
	remember, ok := p.replayWindow(ts, nonce)
	if !ok {
		return seenPlace{}, apierr.PushRefused
	}
	key := p.replayKey(ts, nonce)
	sum := sha256.Sum256(body)
	first, same, err := p.delivery.sight(r.Context(), key, hex.EncodeToString(sum[:16]), remember)
	if err != nil {
		p.logger.Warn("wechat_push: the replay check cannot reach the store; WeChat will retry", zap.Error(err))
		return seenPlace{}, apierr.DeliveryUnavailable
	}
	if !first && !same {
		return seenPlace{}, apierr.PushRefused
	}
	return seenPlace{key: key, recorded: first, ttl: remember}, nil
}

// replayWindow returns how long a plain-mode (timestamp, nonce) is kept
// in the seen set, or false when a POST with it is refused outright: a
// timestamp not spelled canonically or more than max_age off, or a pair
// too long to keep.
func (p *Push) replayWindow(ts, nonce string) (time.Duration, bool) {
	remember := 24 * time.Hour
	if p.maxAge > 0 {
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || strconv.FormatInt(sec, 10) != ts {
			// Only the canonical spelling: "0"+ts or "+"+ts would be a
			// new (timestamp, nonce) under the same signature.
			return 0, false
		}
		if age := time.Since(time.Unix(sec, 0)); age > p.maxAge || age < -p.maxAge {
			return 0, false
		}
		// A pair older than max_age is refused by its age already.
		remember = 2 * p.maxAge
	}
	if len(ts) > 32 || len(nonce) > 128 {
		return 0, false
	}
	return remember, true
}

// closePair records a plain-mode URL check's (timestamp, nonce) in the
// seen set as answered. Its signature is the one a plain-mode POST with
// that pair carries, and the check's URL can be read wherever it was
// logged: no POST may come with the pair after it. The check itself is
// judged by its signature alone, so it is answered even when the store
// cannot take the pair.
func (p *Push) closePair(r *http.Request, ts, nonce string) {
	remember, ok := p.replayWindow(ts, nonce)
	if !ok {
		return // a POST with this pair is refused anyway
	}
	if err := p.delivery.settle(r.Context(), p.replayKey(ts, nonce), remember); err != nil {
		p.logger.Warn("wechat_push: the seen set cannot take a URL check's (timestamp, nonce); a plain-mode POST reusing them within max_age would pass the replay check", zap.Error(err))
	}
}

// replayKey names a plain-mode push in the seen set by its signature, not
// by (timestamp, nonce): the signature hashes their sorted concatenation
// without separators, so digits moved between the two make a new pair
// with the same signature, which must count as seen.
func (p *Push) replayKey(ts, nonce string) string {
	return "plain:" + p.AppID + ":sig:" + msgcrypt.Signature(p.token, ts, nonce)
}

// seenPlace is a plain-mode push's place in the seen set: key (replayKey),
// whether this request recorded it there, and for how long (replayWindow).
type seenPlace struct {
	key      string
	recorded bool
	ttl      time.Duration
}

// unsee forgets a plain-mode push's (timestamp, nonce) when the push that
// recorded it was neither delivered nor queued: WeChat's retry of it,
// which may carry the same pair, must not be refused as a replay.
func (p *Push) unsee(ctx context.Context, key string) {
	if err := p.delivery.forget(ctx, key); err != nil {
		p.logger.Warn("wechat_push: cannot forget a failed plain-mode push's (timestamp, nonce); WeChat's retry of it may be refused", zap.Error(err))
	}
}

// settle closes a plain-mode push's (timestamp, nonce) once the push was
// delivered or queued: a same-body retry passes the replay check only
// while no request with that pair has been answered (its instance died
// while delivering it); after that, the pair is refused with any body.
func (p *Push) settle(ctx context.Context, seen seenPlace) {
	if err := p.delivery.settle(ctx, seen.key, seen.ttl); err != nil {
		p.logger.Warn("wechat_push: cannot mark a plain-mode push's (timestamp, nonce) as answered; a replay of it is answered as a duplicate", zap.Error(err))
	}
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Push)(nil)
	_ caddy.CleanerUpper          = (*Push)(nil)
	_ caddyhttp.MiddlewareHandler = (*Push)(nil)
	_ caddyfile.Unmarshaler       = (*Push)(nil)
)
