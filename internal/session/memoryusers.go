package session

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
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
	if err := storage.Store(ctx, userStorageKey(rec.AppID, rec.OpenID), b); err != nil {
		return fmt.Errorf("keep user record in storage: %w: %w", ErrStoreDown, err)
	}
	return nil
}

// LoadUsers reads the user records kept in storage, deleting those that no
// longer matter.
func LoadUsers(ctx context.Context, storage certmagic.Storage) (*Users, error) {
	u := NewUsers()
	if storage == nil {
		return u, nil
	}
	keys, err := storage.List(ctx, usersPrefix, false)
	if errors.Is(err, fs.ErrNotExist) {
		return u, nil
	}
	if err != nil {
		return nil, err
	}
	now := time.Now()
	for _, key := range keys {
		b, err := storage.Load(ctx, key)
		if err != nil {
			continue
		}
		var rec UserRecord
		if json.Unmarshal(b, &rec) != nil || rec.AppID == "" || rec.OpenID == "" {
			continue
		}
		if rec.Expired(now) {
			_ = storage.Delete(ctx, key)
			continue
		}
		u.Merge(&rec)
	}
	return u, nil
}
