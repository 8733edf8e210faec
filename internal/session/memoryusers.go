package session

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sync/atomic"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/identity"
	"github.com/caddyserver/certmagic"
)

// usersPrefix is where the memory store keeps user records in Caddy's
// storage, one key per user, so a restart keeps cut-offs and bans.
const usersPrefix = "wechat_auth/users"

func userStorageKey(appid, openid string) string {
	return path.Join(usersPrefix, base64.RawURLEncoding.EncodeToString([]byte(identity.UserKey(appid, openid))))
}

func (m *Memory) Users() *Users { return m.users }

// lastUserWrite is when a memory store of this process last kept a user
// record in storage (Unix ns), for UserWrittenSince.
var lastUserWrite atomic.Int64

// UserWrittenSince reports whether a memory store of this process may
// have kept a user record in storage since t: what was read from storage
// before still holds when it has not.
func UserWrittenSince(t time.Time) bool {
	return lastUserWrite.Load() >= t.UnixNano()
}

func (m *Memory) SaveUser(ctx context.Context, rec *UserRecord) error {
	rec = m.users.Merge(rec)
	storage := m.revoked.CurrentStorage()
	if storage == nil {
		return nil
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	err = storage.Store(ctx, userStorageKey(rec.AppID, rec.OpenID), b)
	// After the write: a read of storage begun while it was under way
	// may have missed it.
	lastUserWrite.Store(time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("keep user record in storage: %w: %w", ErrStoreDown, err)
	}
	return nil
}

// LoadUsers reads the user records kept in storage, deleting those that
// are Gone. One that no longer matters but is not Gone (a lifted ban) is
// kept: moved to Redis (redisstore's CarryMemoryStore), it must still
// outrank the ban it lifted. A key that cannot be read is passed over.
func LoadUsers(ctx context.Context, storage certmagic.Storage) (*Users, error) {
	u := NewUsers()
	if storage == nil {
		return u, nil
	}
	recs, gone, _, err := readUsers(ctx, storage)
	if err != nil {
		return nil, err
	}
	for _, key := range gone {
		_ = storage.Delete(ctx, key)
	}
	for _, rec := range recs {
		u.Merge(&rec)
	}
	return u, nil
}

// ReadUserRecords returns the user records kept in storage that are not
// Gone, by their key there, deleting nothing, and the keys it could not
// read: a caller that must not go on as if those records were not there
// reads again.
func ReadUserRecords(ctx context.Context, storage certmagic.Storage) (recs map[string]UserRecord, unreadable []string, err error) {
	recs, _, unreadable, err = readUsers(ctx, storage)
	return recs, unreadable, err
}

// readUsers reads the user records in storage: those that are not Gone,
// by key, the keys of those that are, and the keys it could not read
// (apart from those deleted meanwhile).
func readUsers(ctx context.Context, storage certmagic.Storage) (recs map[string]UserRecord, gone, unreadable []string, err error) {
	keys, err := storage.List(ctx, usersPrefix, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil, nil
	}
	if err != nil {
		return nil, nil, nil, err
	}
	recs = make(map[string]UserRecord, len(keys))
	now := time.Now()
	for _, key := range keys {
		b, err := storage.Load(ctx, key)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				unreadable = append(unreadable, key)
			}
			continue
		}
		var rec UserRecord
		if json.Unmarshal(b, &rec) != nil || rec.AppID == "" || rec.OpenID == "" {
			continue
		}
		if rec.Gone(now) {
			gone = append(gone, key)
			continue
		}
		recs[key] = rec
	}
	return recs, gone, unreadable, nil
}
