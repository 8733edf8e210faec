package outbox

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// storeTimeout bounds one store call of a worker.
const storeTimeout = 5 * time.Second

// run polls for due events until stop closes: every PollInterval, and
// whenever a worker finishes an attempt, so a backlog drains as fast as
// the upstream takes it, not a batch of Workers per interval.
func (o *Outbox) run(stop chan struct{}) {
	defer o.loop.Done()
	t := time.NewTicker(o.cfg.PollInterval)
	defer t.Stop()
	report := true
	for {
		o.poll(stop, report)
		select {
		case <-stop:
			return
		case <-t.C:
			report = true
		case <-o.wake:
			report = false
		}
	}
}

// poll reports the pending counts (when report) and claims as many due
// events as there are free workers. Once stop is closed it claims none
// (run may pick a pending wake over it).
func (o *Outbox) poll(stop chan struct{}, report bool) {
	if stopped(stop) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if report { // on the tick only: the workers' wakes need no count
		o.report(ctx)
	}
	lease := time.Duration(o.lease.Load())
	free := o.cfg.Workers - len(o.slots)
	if free <= 0 {
		return
	}
	batch, err := o.store.due(ctx, free, lease)
	switch {
	case err != nil && !o.storeDown:
		// Once per outage, not once per poll.
		o.storeDown = true
		o.log.Warn("outbox: cannot read due events; retrying", zap.Error(err))
		return
	case err != nil:
		return
	case o.storeDown:
		o.storeDown = false
		o.log.Info("outbox: reading due events again")
	}
	for i, c := range batch {
		if stopped(stop) {
			// Not attempted: given back, due at once for whichever outbox
			// runs next (a storage lock would otherwise be held until the
			// process exits).
			for _, c := range batch[i:] {
				if err := o.store.retry(ctx, c, 0); err != nil {
					o.log.Warn("outbox: cannot give back an event not attempted; it is due again when its claim lapses", zap.Error(err))
				}
			}
			return
		}
		o.slots <- struct{}{}
		o.inflight.Add(1)
		go func() {
			defer func() {
				<-o.slots
				o.inflight.Done()
				select {
				case o.wake <- struct{}{}:
				default: // a wake is pending already
				}
			}()
			o.attempt(c, lease)
		}()
	}
}

func stopped(stop chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// report gives the observer the pending count of each kind seen.
func (o *Outbox) report(ctx context.Context) {
	counts, err := o.store.pending(ctx)
	if err != nil {
		return
	}
	for k := range counts {
		o.kinds[k] = true
	}
	for k := range o.kinds {
		o.obs.Pending(k, counts[k])
	}
}

// attempt delivers a claimed event once, then removes it, schedules its
// next attempt, or drops it once its retry_for has run out. The event's
// own settings apply, whichever receiver's outbox claimed it; an attempt
// is cut where the claim would lapse.
func (o *Outbox) attempt(c *claimed, lease time.Duration) {
	r := c.rec
	log := o.log.With(zap.String("kind", r.Kind), zap.String("event_id", r.ID))
	timeout, until, signer := o.settings(r)
	_, _, err := o.deliver(context.Background(), r, min(timeout, lease-o.margin()), signer)
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err == nil {
		if rerr := o.store.remove(ctx, c); rerr != nil {
			log.Warn("outbox: delivered, but cannot remove the event; it may be delivered again", zap.Error(rerr))
		}
		o.obs.Delivery(r.Kind, ResultDelivered)
		log.Info("outbox: delivered", zap.Int("attempts", r.Attempts+1))
		return
	}
	r.Attempts++
	left := time.Until(until)
	if left <= 0 {
		if rerr := o.store.remove(ctx, c); rerr != nil {
			log.Warn("outbox: cannot remove an expired event", zap.Error(rerr))
			return
		}
		o.obs.Delivery(r.Kind, ResultDropped)
		log.Error("outbox: event dropped: the upstream did not take it within retry_for",
			zap.Int("attempts", r.Attempts), zap.Duration("retry_for", until.Sub(time.UnixMilli(r.First))), zap.Error(err))
		return
	}
	delay := min(o.cfg.Backoff(r.Attempts), left)
	if rerr := o.store.retry(ctx, c, delay); rerr != nil {
		log.Warn("outbox: cannot reschedule the event; it is due again when its claim lapses", zap.Error(rerr))
	}
	o.obs.Delivery(r.Kind, ResultRetried)
	log.Debug("outbox: delivery failed; retrying later", zap.Duration("in", delay), zap.Error(err))
}
