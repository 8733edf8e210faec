package outbox

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Event is a verified event for the upstream.
type Event struct {
	// Kind names the source, "push" or "pay_notify"; it labels metrics and
	// keeps the ids of two sources apart.
	Kind string
	// ID is the event's stable id (the upstream's idempotency key): WeChat's
	// retries of one event carry the same id.
	ID string
	// Key, when set, is what WeChat's retries are recognised by instead of
	// ID: an id that is not unique across the handlers sharing the outbox
	// (two apps' MsgIds) or across events (one without a MsgId) needs more
	// in its key than the id the upstream sees.
	Key string
	// To is the upstream's http:// or https:// URL, delivered to by POST.
	To string
	// Receiver names the receiver that took the event, the same across
	// reloads and restarts (an app id, a merchant id): Config.Route may
	// send a retry to the upstream that receiver has been given since.
	Receiver string
	// Header is sent with the body (X-WX-* and Content-Type).
	Header http.Header
	// Body is the event as the upstream receives it.
	Body []byte
	// Timeout bounds each delivery attempt and RetryFor how long the event
	// is retried (Config's when zero). The event keeps them in the outbox,
	// so whichever outbox on the store delivers it keeps to the settings
	// of the receiver that took it.
	Timeout, RetryFor time.Duration
	// Signer names what signs each attempt (Config.Prepare's first
	// argument); empty for none. Kept with the event too.
	Signer string
}

// Status is what Accept did with an event.
type Status int

const (
	// Delivered: the upstream answered 2xx within the timeout; Result
	// carries its status and body.
	Delivered Status = iota + 1
	// Queued: the event is in the outbox; workers deliver it later.
	Queued
	// Duplicate: the id was accepted before (delivered or queued); answer
	// WeChat as the first time.
	Duplicate
	// Busy: another instance is delivering this id right now, or it is
	// queued on a Redis primary that no replica confirmed yet; answer
	// WeChat an error so it retries later.
	Busy
)

func (s Status) String() string {
	switch s {
	case Delivered:
		return "delivered"
	case Queued:
		return "queued"
	case Duplicate:
		return "duplicate"
	case Busy:
		return "busy"
	}
	return "unknown"
}

// Result is Accept's answer.
type Result struct {
	Status Status
	// StatusCode and Body are the upstream's answer (Delivered only); a
	// push uses a non-empty body as its passive reply.
	StatusCode int
	Body       []byte
}

// Delivery results, the result label of deliveries_total.
const (
	ResultDelivered = "delivered" // the upstream took it (at once or from the outbox)
	ResultQueued    = "queued"    // written to the outbox
	ResultRetried   = "retried"   // an outbox attempt failed; tried again later
	ResultDropped   = "dropped"   // retry_for ran out; the event is gone
	ResultDuplicate = "duplicate" // a retry of an accepted id, not delivered again
	ResultBusy      = "busy"      // a retry while another instance delivers the id
	ResultFailed    = "failed"    // neither delivered nor queued: WeChat must retry
)

// Observer receives the counts the caller turns into metrics. Its methods
// are called concurrently and must not block.
type Observer interface {
	// Delivery counts one outcome (a Result* constant) for kind.
	Delivery(kind, result string)
	// Pending reports how many events of kind wait in the outbox.
	Pending(kind string, n int)
}

type nopObserver struct{}

func (nopObserver) Delivery(string, string) {}
func (nopObserver) Pending(string, int)     {}

// Config tunes an Outbox; zero fields take the defaults.
type Config struct {
	Logger   *zap.Logger
	Observer Observer
	// Client posts the deliveries; redirects are never followed.
	Client *http.Client
	// Timeout bounds one delivery (default 4 s) of an event that gives
	// none.
	Timeout time.Duration
	// RetryFor is how long an undelivered event that gives none is retried
	// before it is dropped (default 24 h).
	RetryFor time.Duration
	// AnswerWithin is when Accept should have answered (default 4.5 s:
	// WeChat and WeChat Pay wait 5 s, then count the try failed). A slow
	// store shortens the first delivery attempt to fit, leaving time to
	// queue the event: two of the claim's round trips, plus Redis's wait
	// for a replica; with none left, the event is queued without a first
	// attempt. The store's own operations are never cut: a store slower
	// than that answers late.
	AnswerWithin time.Duration
	// DedupFor is how long an accepted id is remembered (default 24 h).
	DedupFor time.Duration
	// Lease is how long a worker's claim on a queued event keeps other
	// instances off it (default Timeout + 2 s); it must exceed Timeout.
	// An attempt is cut where the claim would lapse less that margin,
	// whatever the event's own timeout; Cover raises it.
	Lease time.Duration
	// PollInterval is how often workers look for due events (default 1 s);
	// a worker that finishes an attempt looks at once.
	PollInterval time.Duration
	// Backoff is the wait before retry number attempt (default
	// DefaultBackoff).
	Backoff func(attempt int) time.Duration
	// Workers bounds concurrent outbox deliveries (default 16).
	Workers int
	// Route, when set, gives the URL each attempt of an event goes to,
	// from its Receiver and To (To when unset): a reload or a restart may
	// have given its receiver another upstream since it was queued.
	Route func(receiver, to string) string
	// Prepare, when set, adds to the headers of each delivery attempt,
	// the first and every retry, just before it is sent: what must be
	// fresh (a signed assertion that lives a minute) is made here and
	// never kept in the outbox. signer is the event's Signer (for an
	// event queued before events named theirs, DefaultSigner), receiver
	// its Receiver and to where the attempt goes (Route's pick).
	Prepare func(signer, receiver, to string, h http.Header)
	// DefaultSigner stands for the Signer of events kept before they
	// carried their settings.
	DefaultSigner string
}

// Outbox accepts events and drains the store's outbox. One Outbox serves
// every handler using one store; Start and Stop it once.
type Outbox struct {
	store  Store
	cfg    Config
	log    *zap.Logger
	obs    Observer
	client *http.Client

	mu       sync.Mutex
	started  bool
	stopping chan struct{}
	loop     sync.WaitGroup // the polling loop
	inflight sync.WaitGroup // outbox deliveries
	slots    chan struct{}
	wake     chan struct{} // a worker is free: claim more before the tick
	lease    atomic.Int64  // a worker's claim, ns (Config.Lease, or more: Cover)
	// routed holds when each move of a receiver's events to another
	// upstream (Config.Route) was last logged, by kind, receiver and
	// both URLs: once per routedLogEvery.
	routed sync.Map
	// Owned by the polling loop.
	kinds     map[string]bool // kinds whose pending count was reported
	storeDown bool            // the last poll failed (logged once)
}

// ErrInvalidEvent: an event without kind, id or an http(s) To.
var ErrInvalidEvent = errors.New("outbox: event needs a kind, an id and an http(s) URL")

// New returns an Outbox on store; Start runs its workers.
func New(store Store, cfg Config) *Outbox {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 4 * time.Second
	}
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = 24 * time.Hour
	}
	if cfg.DedupFor <= 0 {
		cfg.DedupFor = 24 * time.Hour
	}
	if cfg.AnswerWithin <= 0 {
		cfg.AnswerWithin = 4500 * time.Millisecond
	}
	if cfg.Lease <= cfg.Timeout {
		cfg.Lease = cfg.Timeout + 2*time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Backoff == nil {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 16
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{}
	}
	// A redirect is not a delivery; the body would not follow it anyway.
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	o := &Outbox{
		store: store, cfg: cfg, log: cfg.Logger, obs: cfg.Observer, client: &c,
		slots: make(chan struct{}, cfg.Workers), wake: make(chan struct{}, 1),
		kinds: make(map[string]bool),
	}
	o.lease.Store(int64(cfg.Lease))
	return o
}

// margin is how much longer a claim lasts than the attempt it covers:
// Config's Lease less its Timeout.
func (o *Outbox) margin() time.Duration { return o.cfg.Lease - o.cfg.Timeout }

// Cover makes the workers' claims long enough for attempts of timeout:
// a receiver with a longer timeout than Config's calls it when it starts
// using the outbox.
func (o *Outbox) Cover(timeout time.Duration) {
	want := int64(timeout + o.margin())
	for {
		cur := o.lease.Load()
		if cur >= want || o.lease.CompareAndSwap(cur, want) {
			return
		}
	}
}

// Accept takes a verified event: Duplicate or Busy for an id seen before,
// else Delivered when the upstream took it at once, else Queued once it is
// in the outbox (Busy while a Redis primary holds it that no replica has
// confirmed). An error means neither happened: WeChat must retry.
func (o *Outbox) Accept(ctx context.Context, ev Event) (Result, error) {
	if ev.Kind == "" || ev.ID == "" || !httpURL(ev.To) {
		return Result{}, ErrInvalidEvent
	}
	// WeChat hanging up must not leave a claim half done. The store's
	// operations are not cut at AnswerWithin: an event queued late is
	// answered late, and WeChat's retry of it is recognised; one not
	// queued in time would be lost once WeChat stops retrying.
	start := time.Now()
	ctx = context.WithoutCancel(ctx)
	key := ev.dedupKey()
	timeout := ev.Timeout
	if timeout <= 0 {
		timeout = o.cfg.Timeout
	}
	retryFor := ev.RetryFor
	if retryFor <= 0 {
		retryFor = o.cfg.RetryFor
	}
	state, token, err := o.store.claim(ctx, key, timeout+o.margin(), o.cfg.DedupFor)
	claimed := err == nil
	if err != nil {
		// Without the store the event can still reach the upstream; its
		// retries may then be delivered again (at least once).
		o.log.Warn("outbox: cannot record the event id; delivering without deduplication",
			zap.String("kind", ev.Kind), zap.String("event_id", ev.ID), zap.Error(err))
	}
	switch state {
	case claimDuplicate:
		if c, ok := o.store.(interface {
			confirm(ctx context.Context, key string) error
		}); ok {
			if err := c.confirm(ctx, key); err != nil {
				o.log.Warn("outbox: a retry of an accepted event is not answered yet: its record is not confirmed on a replica",
					zap.String("kind", ev.Kind), zap.String("event_id", ev.ID), zap.Error(err))
				o.obs.Delivery(ev.Kind, ResultBusy)
				return Result{Status: Busy}, nil
			}
		}
		o.obs.Delivery(ev.Kind, ResultDuplicate)
		return Result{Status: Duplicate}, nil
	case claimBusy:
		o.obs.Delivery(ev.Kind, ResultBusy)
		return Result{Status: Busy}, nil
	}
	first := time.Now()
	// The attempt leaves time to queue the event should it fail: two of
	// the claim's round trips at the store's pace of the moment (Redis
	// queues with a script and then a replica check), and the longest
	// wait for a replica. When the claim failed, the store is down and
	// queueing would fail too: the attempt is the event's only chance and
	// takes all the time left.
	left := time.Until(start.Add(o.cfg.AnswerWithin))
	if claimed {
		left -= 2 * first.Sub(start)
		if w, ok := o.store.(interface{ replicaWait() time.Duration }); ok {
			left -= w.replicaWait()
		}
	}
	attempt := min(timeout, left)
	rec := &record{
		Kind: ev.Kind, ID: ev.ID, Key: ev.Key, To: ev.To, Receiver: ev.Receiver, Header: ev.Header, Body: ev.Body,
		First: first.UnixMilli(), Own: true, TimeoutMS: timeout.Milliseconds(),
		Until: first.Add(retryFor).UnixMilli(), Signer: ev.Signer,
	}
	var (
		code int
		body []byte
		derr = errNoTimeLeft
	)
	if attempt > 0 {
		code, body, derr = o.deliver(ctx, rec, attempt, ev.Signer)
	}
	if derr == nil {
		if claimed {
			if err := o.store.done(ctx, key, o.cfg.DedupFor); err != nil {
				o.log.Warn("outbox: delivered, but cannot mark the event id done; a retry after the lease may be delivered again",
					zap.String("kind", ev.Kind), zap.String("event_id", ev.ID), zap.Error(err))
			}
		}
		o.obs.Delivery(ev.Kind, ResultDelivered)
		return Result{Status: Delivered, StatusCode: code, Body: body}, nil
	}
	o.log.Info("outbox: upstream did not take the event; queueing it",
		zap.String("kind", ev.Kind), zap.String("event_id", ev.ID), zap.Error(derr))
	if err := o.store.enqueue(ctx, key, rec, o.cfg.Backoff(0), o.cfg.DedupFor); err != nil {
		if errors.Is(err, errUnconfirmed) {
			// The primary holds the event and delivers it; WeChat's
			// retry is answered once a replica has it too.
			o.log.Warn("outbox: queued, but not confirmed on a replica in time; WeChat is asked to retry",
				zap.String("kind", ev.Kind), zap.String("event_id", ev.ID), zap.Error(err))
			o.obs.Delivery(ev.Kind, ResultQueued)
			return Result{Status: Busy}, nil
		}
		if claimed {
			if rerr := o.store.release(ctx, key, token); rerr != nil {
				o.log.Warn("outbox: cannot release the event id; WeChat's retry waits for the lease",
					zap.String("kind", ev.Kind), zap.String("event_id", ev.ID), zap.Error(rerr))
			}
		}
		o.obs.Delivery(ev.Kind, ResultFailed)
		return Result{}, fmt.Errorf("outbox: not delivered (%v) and not queued: %w", derr, err)
	}
	o.obs.Delivery(ev.Kind, ResultQueued)
	return Result{Status: Queued}, nil
}

// errNoTimeLeft: claiming the event took the time of its first attempt.
var errNoTimeLeft = errors.New("no time left for a first attempt")

// Start loads the store's outbox and starts the workers that drain it.
func (o *Outbox) Start() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.started {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := o.store.open(ctx); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	o.started = true
	o.stopping = make(chan struct{})
	o.loop.Add(1)
	go o.run(o.stopping)
	return nil
}

// Stop stops the workers and waits for the deliveries in flight, at most
// until ctx is done. Undelivered events stay in the store for the next
// start or another instance.
func (o *Outbox) Stop(ctx context.Context) error {
	o.mu.Lock()
	if !o.started {
		o.mu.Unlock()
		return nil
	}
	o.started = false
	close(o.stopping)
	o.mu.Unlock()
	done := make(chan struct{})
	go func() {
		o.loop.Wait()
		o.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
		o.warnLeftQueued(ctx)
		o.store.close()
		return nil
	case <-ctx.Done():
		// The store still writes down what it holds of the events taken
		// so far; those in flight write their own as they end.
		o.store.close()
		return fmt.Errorf("outbox: deliveries still in flight: %w", ctx.Err())
	}
}

// warnLeftQueued says how many events a stopped outbox leaves queued, by
// kind: nothing delivers them until an outbox on the same store runs
// again (another instance sharing it, the next start, or a config that
// brings their receiver back), and they are dropped once retry_for has
// passed.
func (o *Outbox) warnLeftQueued(ctx context.Context) {
	counts, err := o.store.pending(ctx)
	if err != nil {
		return
	}
	for kind, n := range counts {
		if n > 0 {
			o.log.Warn("outbox: stopped with events still queued; an outbox on the same store (another instance, the next start, or a receiver configured again) delivers them within retry_for",
				zap.String("kind", kind), zap.Int("queued", n))
		}
	}
}

// record is an event as the outbox keeps it.
type record struct {
	Kind     string      `json:"kind"`
	ID       string      `json:"id"`
	Key      string      `json:"key,omitempty"` // Event.Key; absent in records written before it existed
	To       string      `json:"to"`
	Receiver string      `json:"receiver,omitempty"` // Event.Receiver
	Header   http.Header `json:"header,omitempty"`
	Body     []byte      `json:"body"`
	First    int64       `json:"first"` // accepted, Unix ms
	Attempts int         `json:"attempts"`
	// The settings of the receiver that took the event. A record written
	// before records carried them has Own false, and the delivering
	// outbox's Config stands in.
	Own       bool   `json:"own,omitempty"`
	TimeoutMS int64  `json:"timeout_ms,omitempty"` // each attempt's bound
	Until     int64  `json:"until,omitempty"`      // dropped when undelivered after, Unix ms
	Signer    string `json:"signer,omitempty"`     // Event.Signer
}

// settings returns r's attempt timeout, the time after which it is
// dropped, and its signer.
func (o *Outbox) settings(r *record) (timeout time.Duration, until time.Time, signer string) {
	if !r.Own {
		return o.cfg.Timeout, time.UnixMilli(r.First).Add(o.cfg.RetryFor), o.cfg.DefaultSigner
	}
	timeout = time.Duration(r.TimeoutMS) * time.Millisecond
	if timeout <= 0 {
		timeout = o.cfg.Timeout
	}
	until = time.UnixMilli(r.Until)
	if r.Until <= 0 { // damaged: the Config's retry_for, not at once
		until = time.UnixMilli(r.First).Add(o.cfg.RetryFor)
	}
	return timeout, until, r.Signer
}

// eventKey keeps the ids of two kinds apart.
func eventKey(kind, id string) string { return kind + ":" + id }

// dedupKey is the store's key of an event: its Key, else its ID.
func (ev Event) dedupKey() string { return recordKey(ev.Kind, ev.ID, ev.Key) }

// key is the store's key of a kept record; a record written before Key
// existed keeps the key it was stored under, kind:id.
func (r *record) key() string { return recordKey(r.Kind, r.ID, r.Key) }

func recordKey(kind, id, key string) string {
	if key != "" {
		return eventKey(kind, key)
	}
	return eventKey(kind, id)
}
