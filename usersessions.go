package wechatauth

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

// userSessionsKept is how many of a user's latest sessions are remembered;
// older ones are never the newest live one unless all of these ended.
const userSessionsKept = 8

// errNoUserSession: the user has no live session.
var errNoUserSession = errors.New("no live session for this user")

// newestLive returns the first of sids (newest first) that names a live
// session of (appid, openid) in st.
func newestLive(ctx context.Context, st sessionStore, appid, openid string, sids []string) (*Session, error) {
	now := time.Now()
	for _, sid := range sids {
		if st.Revoked(sid, now) {
			continue
		}
		s, err := st.Get(ctx, sid)
		switch {
		case errors.Is(err, errNoSession):
			continue
		case err != nil:
			return nil, err
		case s.AppID != appid || s.OpenID != openid:
			continue
		}
		if us, ok := st.(userStore); ok {
			if us.userState().banned(appid, openid, now) != nil {
				return nil, errNoUserSession
			}
			if us.userState().sessionCut(s) {
				continue // the user was revoked or banned after this login
			}
		}
		return s, nil
	}
	return nil, errNoUserSession
}

// userIndex is the memory store's record of each user's latest sessions.
type userIndex struct {
	mu    sync.Mutex
	users map[string][]userSession // by appid + "\x00" + openid, newest first
	limit int                      // prune expired users when len(users) reaches it
}

type userSession struct {
	sid     string
	created time.Time
	expires time.Time
}

func newUserIndex() *userIndex {
	return &userIndex{users: make(map[string][]userSession), limit: 1024}
}

// add records a new session of its user.
func (x *userIndex) add(s *Session, ttl time.Duration) {
	key := identity.UserKey(s.AppID, s.OpenID)
	now := time.Now()
	x.mu.Lock()
	defer x.mu.Unlock()
	list := append(x.users[key], userSession{sid: s.SID, created: s.Created, expires: now.Add(ttl)})
	sort.SliceStable(list, func(i, j int) bool { return list[i].created.After(list[j].created) })
	live := list[:0]
	for _, e := range list {
		if now.Before(e.expires) && len(live) < userSessionsKept {
			live = append(live, e)
		}
	}
	x.users[key] = live
	if len(x.users) >= x.limit {
		x.prune(now)
	}
}

// prune forgets users whose sessions all expired; the limit doubles past
// what stays, so pruning costs O(1) a login on average.
func (x *userIndex) prune(now time.Time) {
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

func (x *userIndex) sids(appid, openid string) []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	list := x.users[identity.UserKey(appid, openid)]
	out := make([]string, len(list))
	for i, e := range list {
		out[i] = e.sid
	}
	return out
}

// NewestSession returns the user's newest live session or errNoUserSession.
func (m *memoryStore) NewestSession(ctx context.Context, appid, openid string) (*Session, error) {
	return newestLive(ctx, m, appid, openid, m.latest.sids(appid, openid))
}

// SetSessionKey replaces the session_key of a stored session, keeping its
// expiry: later decryption and signing use the new key.
func (m *memoryStore) SetSessionKey(_ context.Context, s *Session, key string) error {
	ttl, ok := m.cache.GetTTL(s.SID)
	if !ok || ttl <= 0 {
		return errNoSession
	}
	ns := *s
	ns.SessionKey = key
	cachePut(m.cache, &ns, ttl)
	return nil
}
