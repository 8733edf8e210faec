package session

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/identity"
)

// The session-key services of the wechat_api gateway act on a user's
// newest live session: the last login of that openid for that app that was
// not logged out or revoked. A refresh keeps the session, so it keeps its
// place. The stores remember the last few sessions of each user for that.

// UserSessionsKept is how many of a user's latest sessions are remembered;
// older ones are never the newest live one unless all of these ended.
const UserSessionsKept = 8

// ErrNoUserSession: the user has no live session.
var ErrNoUserSession = errors.New("no live session for this user")

// NewestLive returns the first of sids (newest first) that names a live
// session of (appid, openid) in st.
func NewestLive(ctx context.Context, st Store, appid, openid string, sids []string) (*Session, error) {
	now := time.Now()
	for _, sid := range sids {
		if st.Revoked(sid, now) {
			continue
		}
		s, err := st.Get(ctx, sid)
		switch {
		case errors.Is(err, ErrNoSession):
			continue
		case err != nil:
			return nil, err
		case s.AppID != appid || s.OpenID != openid:
			continue
		}
		if us, ok := st.(UserStore); ok {
			if us.Users().Banned(appid, openid, now) != nil {
				return nil, ErrNoUserSession
			}
			if us.Users().SessionCut(s) {
				continue // the user was revoked or banned after this login
			}
		}
		return s, nil
	}
	return nil, ErrNoUserSession
}

// UserIndex is the memory store's record of each user's latest sessions.
type UserIndex struct {
	mu    sync.Mutex
	users map[string][]userSession // by appid + "\x00" + openid, newest first
	limit int                      // prune expired users when len(users) reaches it
}

type userSession struct {
	sid     string
	created time.Time
	expires time.Time
}

func NewUserIndex() *UserIndex {
	return &UserIndex{users: make(map[string][]userSession), limit: 1024}
}

// Add records a new session of its user.
func (x *UserIndex) Add(s *Session, ttl time.Duration) {
	key := identity.UserKey(s.AppID, s.OpenID)
	now := time.Now()
	x.mu.Lock()
	defer x.mu.Unlock()
	list := append(x.users[key], userSession{sid: s.SID, created: s.Created, expires: now.Add(ttl)})
	sort.SliceStable(list, func(i, j int) bool { return list[i].created.After(list[j].created) })
	live := list[:0]
	for _, e := range list {
		if now.Before(e.expires) && len(live) < UserSessionsKept {
			live = append(live, e)
		}
	}
	x.users[key] = live
	if len(x.users) >= x.limit {
		x.Prune(now)
	}
}

// Prune forgets users whose sessions all expired; the limit doubles past
// what stays, so pruning costs O(1) a login on average.
func (x *UserIndex) Prune(now time.Time) {
	for key, list := range x.users {
		if !anyLive(list, now) {
			delete(x.users, key)
		}
	}
	x.limit = max(1024, 2*len(x.users))
}

func anyLive(list []userSession, now time.Time) bool {
	for _, e := range list {
		if now.Before(e.expires) {
			return true
		}
	}
	return false
}

func (x *UserIndex) SIDs(appid, openid string) []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	list := x.users[identity.UserKey(appid, openid)]
	out := make([]string, len(list))
	for i, e := range list {
		out[i] = e.sid
	}
	return out
}

// NewestSession returns the user's newest live session or ErrNoUserSession.
func (m *Memory) NewestSession(ctx context.Context, appid, openid string) (*Session, error) {
	return NewestLive(ctx, m, appid, openid, m.latest.SIDs(appid, openid))
}

// SetSessionKey replaces the session_key of a stored session, keeping its
// expiry: later decryption and signing use the new key.
func (m *Memory) SetSessionKey(_ context.Context, s *Session, key string) error {
	ttl, ok := m.cache.GetTTL(s.SID)
	if !ok {
		_, ttl, ok = m.refused.Get(s.SID, time.Now())
	}
	if !ok || ttl <= 0 {
		return ErrNoSession
	}
	ns := *s
	ns.SessionKey = key
	m.put(&ns, ttl)
	// A logout between the read above and the put must not bring the
	// session back: it revokes before it deletes.
	if m.revoked.Has(s.SID, time.Now()) {
		m.Delete(context.Background(), s.SID)
	}
	return nil
}
