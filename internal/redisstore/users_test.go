package redisstore

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/identity"
	"github.com/caddy-wechat/wechatauth/internal/session"
)

// TestLiftMissedByAnInstanceReachesItWhenItSyncs: an instance that missed
// a ban's lift (its subscription was down) still holds the ban. The lift
// no longer matters by itself (the ban's cut-off is long past), but it
// stays in Redis, so the instance's next sync ends the ban, also after
// another instance synced first.
func TestLiftMissedByAnInstanceReachesItWhenItSyncs(t *testing.T) {
	srv := rdsStart(t)
	a, b := rdsStore(t, srv, rdsKeyA), rdsStore(t, srv, rdsKeyA)
	ctx := context.Background()
	old := time.Now().Add(-48 * time.Hour)
	ban := &session.UserRecord{AppID: "wxapp", OpenID: "oLifted", RevokedBefore: old, Keep: old.Add(time.Hour), Changed: old, Ban: &session.Ban{Since: old}}
	b.Users().Merge(ban)
	// The lift, written while b did not hear its message.
	lift := *ban
	lift.Ban, lift.Changed = nil, time.Now()
	v, _ := json.Marshal(&lift)
	if err := a.client.HSet(ctx, a.usersKey, identity.UserKey(lift.AppID, lift.OpenID), v).Err(); err != nil {
		t.Fatal(err)
	}
	if err := a.syncUsers(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := b.syncUsers(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if b.Users().Banned(ban.AppID, ban.OpenID, time.Now()) != nil {
		t.Fatal("the instance that missed the lift still bans the user after it synced")
	}
}
