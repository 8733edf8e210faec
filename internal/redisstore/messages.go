package redisstore

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/session"
)

// busMessage is what instances sharing Redis publish to each other, tagged
// with its type. Earlier versions published only session revocations, as
// "<sid> <until Unix ms>"; apply still reads those. A type this version
// does not know is ignored, so a newer instance can add one.
type busMessage struct {
	Type  string              `json:"type"`            // "session", "user" or "rekeyed"
	SID   string              `json:"sid,omitempty"`   // session: the sid revoked; rekeyed: the sid whose key changed
	Until int64               `json:"until,omitempty"` // session: Unix ms the revocation lasts until
	User  *session.UserRecord `json:"user,omitempty"`  // user: the user's record
}

const (
	msgSession = "session"
	msgUser    = "user"
	msgRekeyed = "rekeyed" // the gateway replaced a session_key: drop the cached copy
)

func sessionMessage(sid string, until time.Time) string {
	b, _ := json.Marshal(busMessage{Type: msgSession, SID: sid, Until: until.UnixMilli()})
	return string(b)
}

// legacySessionMessage is a revocation as earlier versions publish and
// read it, on the channel of their layout.
func legacySessionMessage(sid string, until time.Time) string {
	return sid + " " + strconv.FormatInt(until.UnixMilli(), 10)
}

func rekeyedMessage(sid string) string {
	b, _ := json.Marshal(busMessage{Type: msgRekeyed, SID: sid})
	return string(b)
}

func userMessage(rec *session.UserRecord) string {
	b, _ := json.Marshal(busMessage{Type: msgUser, User: rec})
	return string(b)
}

// applyTagged merges one tagged message.
func (r *Store) applyTagged(payload string) {
	var m busMessage
	if json.Unmarshal([]byte(payload), &m) != nil {
		return
	}
	switch m.Type {
	case msgSession:
		if m.SID == "" {
			return
		}
		r.revoked.Add(m.SID, time.UnixMilli(m.Until))
		r.cache.Del(m.SID)
	case msgRekeyed:
		if m.SID != "" {
			r.cache.Del(m.SID) // its session_key was replaced: read it again
		}
	case msgUser:
		if m.User == nil || m.User.AppID == "" || m.User.OpenID == "" {
			return
		}
		r.users.Merge(m.User)
	}
}
