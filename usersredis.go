package wechatauth

import (
	"context"
	"encoding/json"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/identity"
	"github.com/caddy-wechat/wechatauth/internal/session"
	"github.com/redis/go-redis/v9"
)

func (r *redisStore) Users() *session.Users { return r.users }

// SaveUser merges rec here, writes it to the users hash and publishes it
// to the other instances, in one round trip.
func (r *redisStore) SaveUser(ctx context.Context, rec *session.UserRecord) error {
	rec = r.users.Merge(rec)
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, redisOpTimeout)
	defer cancel()
	_, err = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, r.usersKey, identity.UserKey(rec.AppID, rec.OpenID), b)
		p.Publish(ctx, r.channel, userMessage(rec))
		return nil
	})
	if err != nil {
		return r.storeDown("user record", err)
	}
	return nil
}

// syncUsers merges the users hash into this instance's records and drops
// the records that no longer matter. It runs with sync, at start and after
// every (re)subscription.
func (r *redisStore) syncUsers(ctx context.Context, now time.Time) error {
	all, err := r.client.HGetAll(ctx, r.usersKey).Result()
	if err != nil {
		return err
	}
	var expired []string
	for field, v := range all {
		var rec session.UserRecord
		if json.Unmarshal([]byte(v), &rec) != nil || rec.AppID == "" || rec.OpenID == "" {
			continue
		}
		if rec.Expired(now) {
			expired = append(expired, field)
			continue
		}
		r.users.Merge(&rec)
	}
	r.users.Forget(now)
	if len(expired) > 0 {
		return r.client.HDel(ctx, r.usersKey, expired...).Err()
	}
	return nil
}

var _ session.UserStore = (*redisStore)(nil)
