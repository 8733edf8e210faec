package wechatauth

import (
	"context"
	"encoding/json"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/identity"
	"github.com/redis/go-redis/v9"
)

func (r *redisStore) userState() *userState { return r.users }

// saveUser merges rec here, writes it to the users hash and publishes it
// to the other instances, in one round trip.
func (r *redisStore) saveUser(ctx context.Context, rec *userRecord) error {
	rec = r.users.merge(rec)
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
		var rec userRecord
		if json.Unmarshal([]byte(v), &rec) != nil || rec.AppID == "" || rec.OpenID == "" {
			continue
		}
		if rec.expired(now) {
			expired = append(expired, field)
			continue
		}
		r.users.merge(&rec)
	}
	r.users.forget(now)
	if len(expired) > 0 {
		return r.client.HDel(ctx, r.usersKey, expired...).Err()
	}
	return nil
}

var _ userStore = (*redisStore)(nil)
