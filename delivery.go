package wechatauth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/assertion"
	"github.com/caddy-wechat/wechatauth/internal/idheader"
	"github.com/caddy-wechat/wechatauth/internal/metrics"
	"github.com/caddy-wechat/wechatauth/internal/outbox"
	"github.com/caddy-wechat/wechatauth/internal/redisstore"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/certmagic"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// deliverySettings are what a receiver of WeChat's events (wechat_push,
// wechat_pay_notify) needs to hand them to its upstream at least once.
type deliverySettings struct {
	Module   string        // names the module in errors
	Kind     string        // "push", "pay_notify": the metrics' kind, and whose outbox
	Store    string        // "", "memory" or a redis:// URL, as wechat_auth's store
	Redis    *RedisConfig  // or the Redis by its parts
	Timeout  time.Duration // one delivery attempt; 0 for 4 s
	RetryFor time.Duration // how long an undelivered event is retried; 0 for 24 h
	To       string        // the upstream the events go to
	Receiver string        // whose events: the app id or merchant id, the same across reloads

	// Assertion, when set, signs every delivery attempt with the openid
	// and appid of its X-WX-OPENID and X-WX-APPID headers, so the
	// upstream can tell Caddy's deliveries from anyone else's requests.
	Assertion *assertion.Signer
}

// delivery is one handler's way to its outbox. The outbox is shared by
// every handler of the process with the same kind and store, and kept
// across config reloads; each event keeps the timings and signer of the
// handler that took it. It is opened when the wechat app starts (or
// by the first event, whichever comes first), never in Provision, so
// `caddy validate` neither connects to Redis nor drains anything.
type delivery struct {
	s       deliverySettings
	conn    *redisstore.Conn // nil for the memory store
	key     string           // the outbox's key in the pool
	storage certmagic.Storage
	log     *zap.Logger

	mu     sync.Mutex
	pooled *pooledOutbox // once opened
	held   bool          // this delivery holds a reference in the pool
	closed bool
	// serving counts the requests the handler began before it was
	// closed and has not finished: Caddy cleans up a config replaced by
	// a reload while its requests still run, and these keep the outbox
	// until the last one is answered.
	serving int
}

// openDelivery judges s and registers the delivery with the wechat app,
// which opens it when it starts. It connects to nothing.
func openDelivery(ctx caddy.Context, s deliverySettings) (*delivery, error) {
	if s.Timeout <= 0 {
		s.Timeout = 4 * time.Second
	}
	if s.RetryFor <= 0 {
		s.RetryFor = 24 * time.Hour
	}
	sh := &shared{module: s.Module, storeURL: s.Store, redis: s.Redis}
	conn, err := sh.storeConn()
	if err != nil {
		return nil, err
	}
	if err := metrics.Init(ctx.GetMetricsRegistry()); err != nil {
		return nil, fmt.Errorf("%s: metrics: %w", s.Module, err)
	}
	d := &delivery{s: s, conn: conn, storage: ctx.Storage(), log: ctx.Logger()}
	storeID := "memory\x00" + storageID(d.storage)
	if conn != nil {
		storeID = conn.ID
	}
	d.key = s.Kind + "\x00" + storeID
	app, err := loadApp(ctx)
	if err != nil {
		return nil, err
	}
	app.deliveries = append(app.deliveries, d)
	return d, nil
}

// storageID tells Caddy storages apart, so that a reload to another
// storage opens an outbox there instead of writing on into the old one,
// which nothing would drain after a restart: a storage's own description
// where it gives one (file_system's names its directory), else a digest of
// its type and configuration (a storage module's exported fields), which
// is the same across reloads of one config; else its type alone.
func storageID(s certmagic.Storage) string {
	if str, ok := s.(fmt.Stringer); ok {
		return str.String()
	}
	if b, err := json.Marshal(s); err == nil {
		sum := sha256.Sum256(b)
		return fmt.Sprintf("%T %x", s, sum[:12])
	}
	return fmt.Sprintf("%T", s)
}

func signerID(s *assertion.Signer) string {
	if s == nil {
		return ""
	}
	return s.Header() + " " + s.Kid()
}

// errNotOpen: the delivery was closed, or its outbox could not be opened.
var errNotOpen = errors.New("the delivery outbox is not open")

// open takes the outbox from the pool, making and starting it if no
// handler has yet. Once the delivery is closed, only the requests serve
// counted before may still use it.
func (d *delivery) open(ctx context.Context) (*pooledOutbox, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed && (d.serving == 0 || ctx.Value(servingKey{d}) == nil) {
		return nil, errNotOpen
	}
	if d.pooled != nil {
		return d.pooled, nil
	}
	v, loaded, err := outboxes.LoadOrNew(d.key, d.newOutbox)
	if err != nil {
		return nil, fmt.Errorf("%s: delivery outbox: %w", d.s.Module, err)
	}
	d.held, d.pooled = true, v.(*pooledOutbox)
	if loaded { // else newOutbox did, before its workers started
		d.pooled.ob.Cover(d.s.Timeout)
		d.pooled.hold(d.s)
	}
	return d.pooled, nil
}

// accept hands a verified event, for the handler's upstream, to the
// outbox: delivered at once, queued, or recognised as one accepted before
// by key (id when key is empty). An error means neither delivered nor
// queued: the sender must be told to retry.
func (d *delivery) accept(ctx context.Context, id, key string, header http.Header, body []byte) (outbox.Result, error) {
	p, err := d.open(ctx)
	if err != nil {
		return outbox.Result{}, err
	}
	return p.ob.Accept(ctx, outbox.Event{
		Kind: d.s.Kind, ID: id, Key: key, To: d.s.To, Receiver: d.s.Receiver, Header: header, Body: body,
		Timeout: d.s.Timeout, RetryFor: d.s.RetryFor, Signer: signerID(d.s.Assertion),
	})
}

// sight records key, holding value, for ttl and reports whether it was
// new, and if not whether it was recorded with the same value: on every
// instance sharing a Redis store, or in this process with the memory
// store, where a settled key is also kept in Caddy's storage and counts
// as seen after a restart. A replay check: an error means it could not be
// told.
func (d *delivery) sight(ctx context.Context, key, value string, ttl time.Duration) (first, same bool, err error) {
	p, err := d.open(ctx)
	if err != nil {
		return false, false, err
	}
	return p.sight(ctx, d.s.Kind+":"+key, value, ttl)
}

// forget drops key from the seen set (sight).
func (d *delivery) forget(ctx context.Context, key string) error {
	p, err := d.open(ctx)
	if err != nil {
		return err
	}
	return p.forget(ctx, d.s.Kind+":"+key)
}

// settle marks key of the seen set (sight) as answered for the rest of its
// time: from then on no value is the same as the one it holds. A key not
// there is recorded as answered, for ttl: a URL check's pair (closePair),
// or one whose push failed and forgot it (unsee) while WeChat's retry of
// it, let through as the same, was taken. With the memory store it is
// kept in Caddy's storage too, whether or not what is kept there could be
// read yet.
func (d *delivery) settle(ctx context.Context, key string, ttl time.Duration) error {
	p, err := d.open(ctx)
	if err != nil {
		return err
	}
	return p.settle(ctx, d.s.Kind+":"+key, ttl)
}

// servingKey marks the context of a request serve counted for a delivery.
type servingKey struct{ d *delivery }

// serve counts a request the handler begins and returns it with a
// context that says so: until done is called, closing the handler keeps
// its hold on the outbox for that request, so an event WeChat sent just
// before a reload is still delivered or queued rather than refused. A
// request begun after close is not counted, and is refused.
func (d *delivery) serve(r *http.Request) (_ *http.Request, done func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return r, func() {}
	}
	d.serving++
	return r.WithContext(context.WithValue(r.Context(), servingKey{d}, true)), d.served
}

// served ends what serve began; the last request of a closed handler
// gives back its hold, in the background: stopping the outbox may take
// seconds, and the request's answer must not wait for it. A reload that
// brings the same outbox back meanwhile may start a second one beside it,
// as another instance on the store would be: storage locks keep the two
// off the same event.
func (d *delivery) served() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.serving--
	if d.closed && d.serving == 0 {
		if release := d.releaseLocked(); release != nil {
			go func() {
				if err := release(); err != nil {
					d.log.Warn("closing the delivery outbox", zap.Error(err))
				}
			}()
		}
	}
}

// close gives back this handler's hold on the outbox, at once or when its
// last request is answered; the last hold stops it, leaving what is
// undelivered in the store.
func (d *delivery) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.serving > 0 {
		return nil
	}
	if release := d.releaseLocked(); release != nil {
		return release()
	}
	return nil
}

// releaseLocked takes this handler's hold off the outbox and returns the
// function that gives it back to the pool, or nil when it holds none.
func (d *delivery) releaseLocked() func() error {
	if !d.held {
		return nil
	}
	d.pooled.drop(d.s)
	d.held, d.pooled = false, nil
	return func() error {
		_, err := outboxes.Delete(d.key)
		return err
	}
}

// outboxes holds the outboxes across config reloads, as stores holds the
// session stores.
var outboxes = caddy.NewUsagePool()

// deliveryBackoff is the outboxes' wait before each retry; tests shorten it.
var deliveryBackoff = outbox.DefaultBackoff

// pooledOutbox is an outbox with the store it drains.
type pooledOutbox struct {
	ob       *outbox.Outbox
	client   redis.UniversalClient // nil for the memory store
	own      bool                  // client is this outbox's, not a session store's
	borrowed string                // the session store held in stores, whose client this is
	// borrowedLogs is that store's follower: a config holding the outbox
	// holds it too, since the store lives on for the outbox alone.
	borrowedLogs *followingLogger
	logs         *followingLogger // the outbox's lines go where the newest config holding it sends its own

	mu   sync.Mutex
	seen map[string]sighting // memory store: sight's keys (the settled ones also in ob.Remember)
	held map[heldKey]*held   // what the outbox's handlers deliver with
	seq  uint64              // the last held.seq
}

// held is the assertion signer (nil for none) that handlers of the outbox
// deliver a receiver's events to an upstream with (its heldKey), with how
// many such handlers hold it and when it was first held.
type held struct {
	signer *assertion.Signer
	holds  int
	seq    uint64
}

// heldKey names a held: signerID (empty for none), receiver and upstream.
type heldKey struct{ id, receiver, to string }

// hold records that a handler of settings s uses the outbox: its
// receiver's upstream, and its signer, which then signs the deliveries of
// the events that name it, the queued ones of earlier configs and other
// instances included, for as long as a handler holds it.
func (p *pooledOutbox) hold(s deliverySettings) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := heldKey{signerID(s.Assertion), s.Receiver, s.To}
	if h, ok := p.held[k]; ok {
		h.holds++
		return
	}
	p.seq++
	p.held[k] = &held{signer: s.Assertion, holds: 1, seq: p.seq}
}

// drop gives back what hold took.
func (p *pooledOutbox) drop(s deliverySettings) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := heldKey{signerID(s.Assertion), s.Receiver, s.To}
	if h, ok := p.held[k]; ok {
		if h.holds--; h.holds <= 0 {
			delete(p.held, k)
		}
	}
}

// route picks the upstream of an event of receiver queued for to: to
// while a handler of that receiver still delivers there; else the one
// upstream the receiver's handlers deliver to now (a reload or restart
// moved it), so what WeChat was told is taken reaches the upstream
// configured for it. A receiver no handler serves, or one whose handlers
// deliver to several other upstreams, keeps to.
func (p *pooledOutbox) route(receiver, to string) string {
	if receiver == "" {
		return to
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	only := ""
	for k := range p.held {
		switch {
		case k.receiver != receiver:
		case k.to == to:
			return to
		case only == "":
			only = k.to
		case only != k.to:
			return to // several: nobody's guess
		}
	}
	if only != "" {
		return only
	}
	return to
}

// prepare signs a delivery attempt of an event of receiver to the
// upstream to. The event's own signer signs it while a handler holds it
// for that upstream. Otherwise (a reload rotated the key away, turned the
// assertion on, or moved the receiver to this upstream) the newest signer
// a handler of the same receiver holds for this upstream signs it, as the
// upstream now expects: never a signer held only for another upstream,
// nor another receiver's. With none it goes unsigned, as the deliveries
// of a receiver without assertion do. An event queued before events named
// their receiver takes the newest signer held for its upstream.
func (p *pooledOutbox) prepare(signer, receiver, to string, h http.Header) {
	p.mu.Lock()
	var own, newest *held
	for k, c := range p.held {
		if c.signer == nil || k.to != to {
			continue
		}
		if signer != "" && k.id == signer {
			own = c
			break
		}
		if (k.receiver == receiver || receiver == "") && (newest == nil || c.seq > newest.seq) {
			newest = c
		}
	}
	if own == nil {
		own = newest
	}
	p.mu.Unlock()
	if own == nil {
		return
	}
	a := own.signer
	if jwt := a.Assert(h.Get("X-Wx-Openid"), h.Get("X-Wx-Appid")); jwt != "" {
		h[a.Header()] = []string{jwt}
	}
}

// sighting is a key of the seen set of the memory store.
type sighting struct {
	value string
	until time.Time
}

// Redis keys of deliveries: the outbox of kind under wechat_auth:<kind>:,
// so that each kind's workers drain only their own events.
func redisPrefix(kind string) string { return "wechat_auth:" + kind + ":" }

// newOutbox makes and starts the outbox of d's settings. With Redis it
// uses the session store's client when a wechat_auth of this process
// already keeps its sessions in the same Redis, else a client of its own.
func (d *delivery) newOutbox() (caddy.Destructor, error) {
	p := &pooledOutbox{held: make(map[heldKey]*held)}
	var log *zap.Logger
	p.logs, log = newFollowingLogger(d.log)
	var store outbox.Store
	if d.conn == nil {
		p.seen = make(map[string]sighting)
		store = outbox.StorageStore(d.storage, "wechat_auth/outbox/"+d.s.Kind, log)
	} else {
		p.client, p.borrowed, p.borrowedLogs = borrowSessionClient(d.conn)
		if p.client == nil {
			p.client, p.own = d.conn.NewClient(), true
		}
		store = outbox.RedisStore(p.client, redisPrefix(d.s.Kind), log)
	}
	// The first handler's settings stand in for those of events queued
	// before events carried their own.
	cfg := outbox.Config{
		Logger:        log,
		Observer:      deliveryMetrics{},
		Timeout:       d.s.Timeout,
		RetryFor:      d.s.RetryFor,
		Route:         p.route,
		Prepare:       p.prepare,
		DefaultSigner: signerID(d.s.Assertion),
		Backoff:       deliveryBackoff,
	}
	// The gauge shows 0 from the start, not only once something waited.
	metrics.OutboxPending.WithLabelValues(d.s.Kind)
	p.ob = outbox.New(store, cfg)
	// The first handler's signer and upstream are held before the workers
	// start, or their first poll could find them missing.
	p.hold(d.s)
	if err := p.ob.Start(); err != nil {
		p.releaseClient()
		return nil, err
	}
	return p, nil
}

// borrowSessionClient finds the session store this process keeps in the
// Redis of conn and holds it, returning its client, its key in stores and
// its logs' follower; nil when there is none.
func borrowSessionClient(conn *redisstore.Conn) (redis.UniversalClient, string, *followingLogger) {
	prefix := "redis\x00" + conn.ID + "\x00"
	var key string
	stores.Range(func(k, v any) bool {
		if _, ok := v.(*pooledStore).Store.(*redisstore.Store); ok && strings.HasPrefix(k.(string), prefix) {
			key = k.(string)
			return false
		}
		return true
	})
	if key == "" {
		return nil, "", nil
	}
	v, loaded, err := stores.LoadOrNew(key, func() (caddy.Destructor, error) {
		return nil, errors.New("the session store went away")
	})
	if err != nil || !loaded {
		return nil, "", nil
	}
	ps := v.(*pooledStore)
	return ps.Store.(*redisstore.Store).Client(), key, ps.logs
}

func (p *pooledOutbox) releaseClient() {
	if p.own && p.client != nil {
		p.client.Close()
	}
	if p.borrowed != "" {
		stores.Delete(p.borrowed)
		p.borrowed = ""
	}
}

// Destruct stops the outbox once no config holds it: deliveries in
// flight get a few seconds, and what is undelivered stays in the store.
func (p *pooledOutbox) Destruct() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := p.ob.Stop(ctx)
	p.releaseClient()
	return err
}

// sightScript: KEYS[1] the seen key; ARGV value, ttl ms. "n" when the
// key was new (and is now set), else "s:" and the value it holds.
var sightScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then return 's:' .. v end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 'n'`)

func (p *pooledOutbox) sight(ctx context.Context, key, value string, ttl time.Duration) (first, same bool, err error) {
	if p.client != nil {
		ctx, cancel := context.WithTimeout(ctx, redisstore.IOTimeout)
		defer cancel()
		res, err := sightScript.Run(ctx, p.client, []string{"wechat_auth:seen:" + key}, value, ttl.Milliseconds()).Text()
		if err != nil {
			return false, false, err
		}
		return res == "n", res == "s:"+value, nil
	}
	// Settled before a restart, or by another outbox on the same storage
	// (read every 10 s); asked outside p.mu, which no store lock is taken
	// under.
	remembered, err := p.ob.Remembered(key)
	now := time.Now()
	p.mu.Lock()
	if s, ok := p.seen[key]; ok && s.until.After(now) {
		p.mu.Unlock()
		return false, s.value == value, nil
	}
	if remembered || err != nil {
		p.mu.Unlock()
		return false, false, err
	}
	if len(p.seen) > 1024 {
		for k, s := range p.seen {
			if !s.until.After(now) {
				delete(p.seen, k)
			}
		}
	}
	p.seen[key] = sighting{value: value, until: now.Add(ttl)}
	p.mu.Unlock()
	return true, false, nil
}

func (p *pooledOutbox) forget(ctx context.Context, key string) error {
	if p.client != nil {
		ctx, cancel := context.WithTimeout(ctx, redisstore.IOTimeout)
		defer cancel()
		return p.client.Del(ctx, "wechat_auth:seen:"+key).Err()
	}
	p.mu.Lock()
	delete(p.seen, key)
	p.mu.Unlock()
	return nil
}

// settledSighting is the value a settled key of the seen set holds; sight's
// values are hex digests, so it is never the same as one.
const settledSighting = "settled"

// settleScript: KEYS[1] the seen key; ARGV[1] the ttl in ms for a key no
// longer there. The value becomes settledSighting, keeping its ttl.
var settleScript = redis.NewScript(`
if redis.call('SET', KEYS[1], '` + settledSighting + `', 'XX', 'KEEPTTL') then return 1 end
redis.call('SET', KEYS[1], '` + settledSighting + `', 'PX', ARGV[1])
return 0`)

func (p *pooledOutbox) settle(ctx context.Context, key string, ttl time.Duration) error {
	if p.client != nil {
		ctx, cancel := context.WithTimeout(ctx, redisstore.IOTimeout)
		defer cancel()
		return settleScript.Run(ctx, p.client, []string{"wechat_auth:seen:" + key}, ttl.Milliseconds()).Err()
	}
	now := time.Now()
	p.mu.Lock()
	s, ok := p.seen[key]
	if !ok || !s.until.After(now) {
		s.until = now.Add(ttl)
	}
	s.value = settledSighting
	p.seen[key] = s
	p.mu.Unlock()
	// Kept in the storage too: the process's seen set does not outlive a
	// restart, and within max_age after it the signature would sign any
	// body.
	p.ob.Remember(key, s.until)
	return nil
}

// deliveryMetrics turns the outbox's counts into deliveries_total and
// outbox_pending.
type deliveryMetrics struct{}

func (deliveryMetrics) Delivery(kind, result string) {
	metrics.Deliveries.WithLabelValues(kind, result).Inc()
}

func (deliveryMetrics) Pending(kind string, n int) {
	metrics.OutboxPending.WithLabelValues(kind).Set(float64(n))
}

// secretFields lists, name then value, the secrets c's lines may hold,
// for warnLiteralSecrets.
func (c DeliveryConfig) secretFields() []string {
	return append(storeSecretFields(c.Store, c.Redis), "assertion_key", c.AssertionKey)
}

// DeliveryConfig is what every receiver of WeChat's events (wechat_push,
// wechat_pay_notify) delivers with: the upstream, the timings, the
// outbox's store and the assertion on each delivery.
type DeliveryConfig struct {
	// The upstream URL (http:// or https://) each event is POSTed to. The
	// upstream should accept only Caddy's requests: a private listener,
	// or assertion. Required.
	To string `json:"to,omitempty"`

	// How long one delivery attempt may take; an upstream answering 2xx
	// within it has the event, and a slower one gets it again from the
	// outbox. A push's passive reply must come within it: keep it under
	// WeChat's 5 s. Default: 4s
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// How long an undelivered event is retried (after 5 s, 10 s, then
	// every 20 s for its first 10 minutes, then backing off to every 10
	// minutes) before it is dropped with an ERROR log. Default: 24h
	RetryFor caddy.Duration `json:"retry_for,omitempty"`

	// Where the outbox and the deduplication records live: "memory" for
	// Caddy's storage (survives a restart of one instance), or a
	// redis:// URL shared by every instance, as in wechat_auth.
	// Default: the wechat app's store.
	Store string `json:"store,omitempty"`

	// The Redis of the store given by its parts, as in wechat_auth's
	// store redis { … }.
	Redis *RedisConfig `json:"redis,omitempty"`

	// Sign every delivery with an identity assertion (an ES256 JWT: sub
	// the user's openid and aud the appid when the event names them, a
	// 60 s lifetime), so the upstream can accept events only from Caddy.
	// The key is wechat_auth's (generated once in Caddy's storage,
	// published at its jwks.json) unless assertion_key gives one.
	Assertion bool `json:"assertion,omitempty"`

	// The header that carries the assertion. Default: X-WX-ASSERTION
	AssertionHeader string `json:"assertion_header,omitempty"`

	// The assertion's private key, a PEM ECDSA P-256 key; use
	// {file./path/key.pem}. Give wechat_auth's, when it has one.
	AssertionKey string `json:"assertion_key,omitempty"`

	delivery *delivery
}

// line reads the Caddyfile line sub when it is one of the delivery
// settings; handled is false when it is not.
func (c *DeliveryConfig) line(d *caddyfile.Dispenser, sub string) (handled bool, err error) {
	switch sub {
	case "to":
		err = oneArg(d, &c.To)
	case "timeout":
		c.Timeout, err = durationLine(d)
	case "retry_for":
		c.RetryFor, err = durationLine(d)
	case "store":
		var sc sharedConfig
		if _, err = sc.line(d); err == nil {
			c.Store, c.Redis = sc.Store, sc.Redis
			if c.Store == "" && c.Redis == nil {
				c.Store = "memory" // said outright: not the wechat app's
			}
		}
	case "assertion":
		args := d.RemainingArgs()
		if len(args) > 1 {
			return true, d.Errf("assertion takes at most a header name: assertion [<header>]")
		}
		c.Assertion = true
		if len(args) == 1 {
			c.AssertionHeader = args[0]
		}
	case "assertion_key":
		err = oneArg(d, &c.AssertionKey)
	default:
		return false, nil
	}
	return true, err
}

// open judges the settings, naming module in its errors, and registers
// the outbox of kind, which opens when the wechat app starts. receiver
// names whose events these are (an app id, a merchant id), the same
// across reloads; taken are the receiver's own headers, which the
// assertion may not use.
func (c *DeliveryConfig) open(ctx caddy.Context, app *WeChatApp, module, kind, receiver string, taken ...string) error {
	to := strings.TrimSpace(caddy.NewReplacer().ReplaceKnown(c.To, ""))
	if !isHTTPURL(to) {
		return fmt.Errorf("%s: to must be an http:// or https:// URL of the upstream, such as http://127.0.0.1:3000/wechat/%s", module, kind)
	}
	c.To = to
	if c.Timeout < 0 || c.RetryFor < 0 {
		return fmt.Errorf("%s: timeout and retry_for must not be negative", module)
	}
	for _, err := range []error{unitSlip("timeout", c.Timeout, time.Millisecond), unitSlip("retry_for", c.RetryFor, time.Millisecond)} {
		if err != nil {
			return fmt.Errorf("%s: %w", module, err)
		}
	}
	store, redis := c.Store, c.Redis
	if store == "" && redis == nil {
		store, redis = app.Store, app.Redis
	}
	signer, err := deliverySigner(ctx, module, app.Sandbox, c.Assertion, c.AssertionHeader, c.AssertionKey, taken...)
	if err != nil {
		return err
	}
	c.delivery, err = openDelivery(ctx, deliverySettings{
		Module: module, Kind: kind, Store: store, Redis: redis,
		Timeout: time.Duration(c.Timeout), RetryFor: time.Duration(c.RetryFor),
		To: c.To, Receiver: receiver, Assertion: signer,
	})
	return err
}

// Cleanup gives back this config's hold on the outbox.
func (c *DeliveryConfig) Cleanup() error {
	if c.delivery == nil {
		return nil
	}
	return c.delivery.close()
}

// isHTTPURL reports whether s is an absolute http:// or https:// URL.
func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// deliverySigner returns the signer that puts an assertion on each of a
// receiver's deliveries (nil when on is false), with wechat_auth's key
// unless keyPEM gives one; header may not be one of taken or the headers
// every delivery carries.
func deliverySigner(ctx caddy.Context, module string, sandbox, on bool, header, keyPEM string, taken ...string) (*assertion.Signer, error) {
	if !on {
		if header != "" || keyPEM != "" {
			return nil, fmt.Errorf("%s: assertion_header or assertion_key is set but assertion is not: add `assertion` to sign deliveries", module)
		}
		return nil, nil
	}
	taken = append([]string{"X-Wx-Openid", "X-Wx-Appid", "X-Wx-Event-Id", idheader.Source, "Content-Type", "Authorization"}, taken...)
	return assertionSigner(ctx, module, sandbox, header, keyPEM, taken...)
}
