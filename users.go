package wechatauth

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/apierr"
	"github.com/caddy-wechat/wechatauth/internal/identity"
)

// userRecord is what an operator decided about one user of one app: a
// cut-off (every token issued before RevokedBefore is refused) and a ban
// (logins refused). It is kept by the session store (Caddy's storage for
// the memory store, Redis otherwise) and is the whole state of the user:
// a newer record replaces an older one, except that a cut-off never moves
// back.
type userRecord struct {
	AppID         string    `json:"appid"`
	OpenID        string    `json:"openid"`
	RevokedBefore time.Time `json:"revoked_before,omitzero"`
	// Keep is when the cut-off stops mattering: every token issued
	// before it has expired by then. A record without a ban in force is
	// forgotten after Keep.
	Keep    time.Time `json:"keep"`
	Changed time.Time `json:"changed"` // orders the records of one user
	Ban     *userBan  `json:"ban,omitempty"`
}

// userBan refuses a user's logins from Since until Until (zero: until
// lifted).
type userBan struct {
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until,omitzero"`
	Reason string    `json:"reason,omitempty"`
}

func (b *userBan) inForce(now time.Time) bool {
	return b != nil && (b.Until.IsZero() || now.Before(b.Until))
}

// expired reports whether rec can be forgotten at now.
func (rec *userRecord) expired(now time.Time) bool {
	return !now.Before(rec.Keep) && !rec.Ban.inForce(now)
}

// userState holds the records of one store. The proxied path asks refused
// on every request: one atomic load, and while any cut-off exists one
// lock-free map lookup of a key made once per verified token.
type userState struct {
	cuts sync.Map     // userKey → time.Time: tokens issued before are refused
	n    atomic.Int64 // entries in cuts

	mu      sync.Mutex
	records map[string]*userRecord
}

func newUserState() *userState {
	return &userState{records: make(map[string]*userRecord)}
}

// refused reports whether id's token was issued before its user's cut-off.
func (u *userState) refused(id *identity.Identity) bool {
	if u.n.Load() == 0 {
		return false
	}
	v, ok := u.cuts.Load(id.Key)
	return ok && id.Issued.Before(v.(time.Time))
}

// sessionCut reports whether s began before its user's cut-off: every
// token it could show was then issued before it, so the session is dead.
func (u *userState) sessionCut(s *Session) bool {
	if u.n.Load() == 0 {
		return false
	}
	v, ok := u.cuts.Load(identity.UserKey(s.AppID, s.OpenID))
	return ok && s.Created.Before(v.(time.Time))
}

// merge takes a record in and returns the one in force for that user.
func (u *userState) merge(rec *userRecord) *userRecord {
	key := identity.UserKey(rec.AppID, rec.OpenID)
	u.mu.Lock()
	defer u.mu.Unlock()
	cur := u.records[key]
	if cur != nil {
		c := *rec
		if cur.Changed.After(rec.Changed) {
			c = *cur
		}
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
		rec = &c
	}
	u.records[key] = rec
	if !rec.RevokedBefore.IsZero() {
		if _, had := u.cuts.Swap(key, rec.RevokedBefore); !had {
			u.n.Add(1)
		}
	}
	return rec
}

// forget drops the records that no longer matter and returns their keys.
func (u *userState) forget(now time.Time) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var gone []string
	for key, rec := range u.records {
		if rec.expired(now) {
			delete(u.records, key)
			if _, had := u.cuts.LoadAndDelete(key); had {
				u.n.Add(-1)
			}
			gone = append(gone, key)
		}
	}
	return gone
}

// record returns a copy of the user's record (an empty one when none).
func (u *userState) record(appid, openid string) userRecord {
	u.mu.Lock()
	defer u.mu.Unlock()
	if rec := u.records[identity.UserKey(appid, openid)]; rec != nil {
		return *rec
	}
	return userRecord{AppID: appid, OpenID: openid}
}

// banned returns the ban in force on the user at now, or nil.
func (u *userState) banned(appid, openid string, now time.Time) *userBan {
	u.mu.Lock()
	defer u.mu.Unlock()
	if rec := u.records[identity.UserKey(appid, openid)]; rec != nil && rec.Ban.inForce(now) {
		return rec.Ban
	}
	return nil
}

// bans returns the records with a ban in force at now.
func (u *userState) bans(now time.Time) []userRecord {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []userRecord
	for _, rec := range u.records {
		if rec.Ban.inForce(now) {
			out = append(out, *rec)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ban.Since.Before(out[j].Ban.Since) })
	return out
}

// cutOff returns when a user revocation made at now takes effect: the
// next whole second. Token times (iat) are whole seconds, so every token
// issued up to now is before it, and a token issued after now is given
// that time at least (issueTime), so the user can log in again at once.
func cutOff(now time.Time) time.Time {
	return now.Truncate(time.Second).Add(time.Second)
}

// issueTime is the time a new token of s is issued at: now, or the user's
// cut-off when that is later, so the token is not refused by it.
func (h *Handler) issueTime(s *Session) time.Time {
	now := time.Now()
	if h.users.n.Load() == 0 {
		return now
	}
	if v, ok := h.users.cuts.Load(identity.UserKey(s.AppID, s.OpenID)); ok && v.(time.Time).After(now) {
		return v.(time.Time)
	}
	return now
}

// errBannedUser answers the login of a user an operator banned: the
// catalogue's user_blocked, with the operator, not WeChat, as its cause.
var errBannedUser = apierr.UserBlocked.WithMessage("This user is blocked by the operator of this service.")

// checkBanned refuses the login of a banned user.
func (h *Handler) checkBanned(appid, openid string) *apierr.Error {
	if h.users.banned(appid, openid, time.Now()) != nil {
		return errBannedUser
	}
	return nil
}

// userStore is a session store that keeps user records: save merges rec
// here at once, then keeps it durably and tells the other instances. When
// that fails rec still holds here, and the error wraps errStoreDown.
type userStore interface {
	userState() *userState
	saveUser(ctx context.Context, rec *userRecord) error
}

// provisionUsers takes the user records of the store.
func (h *Handler) provisionUsers() {
	if us, ok := h.store.(userStore); ok {
		h.users = us.userState()
	} else {
		h.users = newUserState()
	}
}
