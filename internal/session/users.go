package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/identity"
)

// UserRecord is what an operator decided about one user of one app: a
// cut-off (every token issued before RevokedBefore is refused) and a ban
// (logins refused). It is kept by the session store (Caddy's storage for
// the memory store, Redis otherwise) and is the whole state of the user;
// two records of one user merge (MergeRecords): the later changed one,
// the ban decided last, and a cut-off that never moves back.
type UserRecord struct {
	AppID         string    `json:"appid"`
	OpenID        string    `json:"openid"`
	RevokedBefore time.Time `json:"revoked_before,omitzero"`
	// Keep is when the cut-off stops mattering: every token issued
	// before it has expired by then. A record without a ban in force
	// no longer matters after Keep (Expired).
	Keep    time.Time `json:"keep"`
	Changed time.Time `json:"changed"` // orders the records of one user
	Ban     *Ban      `json:"ban,omitempty"`
	// BanChanged is when Ban (a ban, or none: its lift) was decided,
	// which orders the bans of one user apart from the records: a
	// revocation decides nothing about the ban and carries the one its
	// instance knew, from when it was decided. Zero in records written
	// before it existed: Changed stands for it.
	BanChanged time.Time `json:"ban_changed,omitzero"`
	// Decided marks the record of an operator's ban or lift made just
	// now, on its way to a store: a store shared with other instances
	// decides it after any decision it holds, which was made before in
	// real time whatever the clocks say. Never kept or sent.
	Decided bool `json:"-"`
}

// noBanDecision is the BanChanged of a record that carries no ban and
// knows of no decision about one: any decision is later.
var noBanDecision = time.Unix(0, 0).UTC()

// BanDecided is when rec's ban (or its lift) was decided.
func (rec *UserRecord) BanDecided() time.Time {
	if rec.BanChanged.IsZero() {
		return rec.Changed
	}
	return rec.BanChanged
}

// KeepBan gives rec, a revocation, the ban of cur, the user's record in
// force here, and when that was decided: merged with a ban decided after
// it (on an instance this one did not hear), rec leaves that ban as it is.
func (rec *UserRecord) KeepBan(cur *UserRecord) {
	rec.Ban, rec.BanChanged = cur.Ban, cur.BanDecided()
	if rec.BanChanged.IsZero() {
		rec.BanChanged = noBanDecision
	}
}

// Ban refuses a user's logins from Since until Until (zero: until
// lifted).
type Ban struct {
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until,omitzero"`
	Reason string    `json:"reason,omitempty"`
}

func (b *Ban) InForce(now time.Time) bool {
	return b != nil && (b.Until.IsZero() || now.Before(b.Until))
}

// Expired reports whether rec no longer matters at now: its cut-off is
// past Keep and no ban is in force. It is kept a while longer (Gone).
func (rec *UserRecord) Expired(now time.Time) bool {
	return !now.Before(rec.Keep) && !rec.Ban.InForce(now)
}

// Users holds the records of one store. The proxied path asks refused
// on every request: one atomic load, and while any cut-off exists one
// lock-free map lookup of a key made once per verified token.
type Users struct {
	cuts sync.Map     // userKey → time.Time: tokens issued before are refused
	n    atomic.Int64 // entries in cuts

	forgot atomic.Int64 // Unix ns of the last Forget (Tidy)

	mu      sync.Mutex
	records map[string]*UserRecord
}

// tidyEvery is how often Tidy forgets.
const tidyEvery = time.Minute

// Tidy runs Forget when it has not run for tidyEvery: the cut-offs that
// no longer matter stop costing the proxied path a lookup, and the
// records Gone stop taking memory, without a loop of their own. A login
// (Banned) calls it, and a store's background loop may.
func (u *Users) Tidy(now time.Time) {
	last := u.forgot.Load()
	if now.UnixNano()-last < int64(tidyEvery) || !u.forgot.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	u.Forget(now)
}

// IssueTime is the time a new token of the user is issued at: now, or the
// user's cut-off when that is later, so the token is not refused by it.
func (u *Users) IssueTime(appid, openid string, now time.Time) time.Time {
	if u.n.Load() == 0 {
		return now
	}
	if v, ok := u.cuts.Load(identity.UserKey(appid, openid)); ok && v.(time.Time).After(now) {
		return v.(time.Time)
	}
	return now
}

// NewUsers makes an empty set of records.
func NewUsers() *Users {
	return &Users{records: make(map[string]*UserRecord)}
}

// Checked is how many cut-offs the proxied path checks (Refused); none
// lets it answer with one atomic load.
func (u *Users) Checked() int64 { return u.n.Load() }

// Refused reports whether id's token was issued before its user's cut-off.
func (u *Users) Refused(id *identity.Identity) bool {
	if u.n.Load() == 0 {
		return false
	}
	v, ok := u.cuts.Load(id.Key)
	return ok && id.Issued.Before(v.(time.Time))
}

// SessionCut reports whether s began before its user's cut-off: every
// token it could show was then issued before it, so the session is dead.
func (u *Users) SessionCut(s *Session) bool {
	if u.n.Load() == 0 {
		return false
	}
	v, ok := u.cuts.Load(identity.UserKey(s.AppID, s.OpenID))
	return ok && s.Created.Before(v.(time.Time))
}

// laterBan reports whether a's ban was decided after b's. Two decided at
// the same time (two instances behind a third's clock each decide just
// after its decision) are ordered by what they say, the same way on every
// instance whatever order they meet in: a ban before none, then the later
// start, the later end (none: the latest), the greater reason.
func laterBan(a, b *UserRecord) bool {
	da, db := a.BanDecided(), b.BanDecided()
	if !da.Equal(db) {
		return da.After(db)
	}
	switch {
	case (a.Ban == nil) != (b.Ban == nil):
		return a.Ban != nil
	case a.Ban == nil:
		return false
	case !a.Ban.Since.Equal(b.Ban.Since):
		return a.Ban.Since.After(b.Ban.Since)
	case !a.Ban.Until.Equal(b.Ban.Until):
		return a.Ban.Until.IsZero() || !b.Ban.Until.IsZero() && a.Ban.Until.After(b.Ban.Until)
	}
	return a.Ban.Reason > b.Ban.Reason
}

// MergeRecords returns what two records of one user make together: the
// later changed one, with the ban decided later and the later cut-off
// and keep of the two (a cut-off never moves back).
func MergeRecords(cur, rec *UserRecord) *UserRecord {
	c := *rec
	if cur.Changed.After(rec.Changed) {
		c = *cur
	}
	ban := rec
	if laterBan(cur, rec) {
		ban = cur
	}
	c.Ban, c.BanChanged = ban.Ban, ban.BanDecided()
	if cur.RevokedBefore.After(c.RevokedBefore) {
		c.RevokedBefore = cur.RevokedBefore
	}
	if rec.RevokedBefore.After(c.RevokedBefore) {
		c.RevokedBefore = rec.RevokedBefore
	}
	if cur.Keep.After(c.Keep) {
		c.Keep = cur.Keep
	}
	if rec.Keep.After(c.Keep) {
		c.Keep = rec.Keep
	}
	return &c
}

// Merge takes a record in and returns the one in force for that user.
func (u *Users) Merge(rec *UserRecord) *UserRecord {
	key := identity.UserKey(rec.AppID, rec.OpenID)
	u.mu.Lock()
	defer u.mu.Unlock()
	if cur := u.records[key]; cur != nil {
		rec = MergeRecords(cur, rec)
	} else if rec.Decided {
		c := *rec
		rec = &c
	}
	rec.Decided = false // the store has read it; it is not kept
	u.records[key] = rec
	if !rec.RevokedBefore.IsZero() && !rec.Expired(time.Now()) {
		if _, had := u.cuts.Swap(key, rec.RevokedBefore); !had {
			u.n.Add(1)
		}
	} else if _, had := u.cuts.LoadAndDelete(key); had {
		u.n.Add(-1)
	}
	return rec
}

// Tombstone is how long a record that no longer matters (a lifted ban
// whose cut-off is past) is kept after its last change: the lift still
// outranks the ban it ended when the ban comes again (an instance that
// missed the lift, a message delivered late, a write back to a Redis that
// restarted empty).
const Tombstone = 7 * 24 * time.Hour

// Gone reports whether rec can be dropped at now: it no longer matters,
// and its tombstone time has passed.
func (rec *UserRecord) Gone(now time.Time) bool {
	last := rec.Changed
	if d := rec.BanDecided(); d.After(last) {
		last = d
	}
	return rec.Expired(now) && now.Sub(last) > Tombstone
}

// Forget stops checking the cut-offs of the records that no longer matter
// (every token they refuse has expired), and drops those that are Gone.
func (u *Users) Forget(now time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for key, rec := range u.records {
		if !rec.Expired(now) {
			continue
		}
		if _, had := u.cuts.LoadAndDelete(key); had {
			u.n.Add(-1)
		}
		if rec.Gone(now) {
			delete(u.records, key)
		}
	}
}

// Record returns a copy of the user's record (an empty one when none).
func (u *Users) Record(appid, openid string) UserRecord {
	u.mu.Lock()
	defer u.mu.Unlock()
	if rec := u.records[identity.UserKey(appid, openid)]; rec != nil {
		return *rec
	}
	return UserRecord{AppID: appid, OpenID: openid}
}

// Banned returns the ban in force on the user at now, or nil.
func (u *Users) Banned(appid, openid string, now time.Time) *Ban {
	u.Tidy(now)
	u.mu.Lock()
	defer u.mu.Unlock()
	if rec := u.records[identity.UserKey(appid, openid)]; rec != nil && rec.Ban.InForce(now) {
		return rec.Ban
	}
	return nil
}

// Bans returns the records with a ban in force at now.
func (u *Users) Bans(now time.Time) []UserRecord {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []UserRecord
	for _, rec := range u.records {
		if rec.Ban.InForce(now) {
			out = append(out, *rec)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ban.Since.Before(out[j].Ban.Since) })
	return out
}

// Differing returns the records held here that others does not hold as
// they are here: missing there, or different in any field.
func (u *Users) Differing(others map[string]*UserRecord) []UserRecord {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []UserRecord
	for key, rec := range u.records {
		if o := others[key]; o == nil || !o.same(rec) {
			out = append(out, *rec)
		}
	}
	return out
}

// same reports whether rec and o say the same, time zones aside.
func (rec *UserRecord) same(o *UserRecord) bool {
	return rec.AppID == o.AppID && rec.OpenID == o.OpenID &&
		rec.RevokedBefore.Equal(o.RevokedBefore) && rec.Keep.Equal(o.Keep) &&
		rec.Changed.Equal(o.Changed) && rec.BanChanged.Equal(o.BanChanged) &&
		(rec.Ban == nil) == (o.Ban == nil) &&
		(rec.Ban == nil || rec.Ban.Since.Equal(o.Ban.Since) && rec.Ban.Until.Equal(o.Ban.Until) && rec.Ban.Reason == o.Ban.Reason)
}

// ErrQueued: a user record the store did not take is kept, and written by
// the store as soon as it answers again.
var ErrQueued = errors.New("kept here, and written once the store answers")

// CutOff returns when a user revocation made at now takes effect: the
// next whole second. Token times (iat) are whole seconds, so every token
// issued up to now is before it, and a token issued after now is given
// that time at least (issueTime), so the user can log in again at once.
func CutOff(now time.Time) time.Time {
	return now.Truncate(time.Second).Add(time.Second)
}

// UserStore is a session store that keeps user records: save merges rec
// here at once, then keeps it durably and tells the other instances. When
// that fails rec still holds here, and the error wraps ErrStoreDown, and
// ErrQueued too when the store writes rec by itself once it can.
type UserStore interface {
	Users() *Users
	SaveUser(ctx context.Context, rec *UserRecord) error
}

// NewID returns a random 128-bit session id.
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
