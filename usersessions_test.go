package wechatauth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/metrics"
	"github.com/caddy-wechat/wechatauth/wechattest"
)

// testNewestSession runs the newest-live-session rules against a store:
// each login is the newest, a logged-out or revoked one gives way to the
// one before, none live is errNoUserSession, and a replaced key is what
// later reads see (from a second store on the same backend too, when
// given).
func testNewestSession(t *testing.T, st, other sessionStore) {
	ctx := context.Background()
	openid := "oNewest" + newSID()[:10]
	login := func(ago time.Duration) *Session {
		s := &Session{SID: newSID(), AppID: "wxnewest", OpenID: openid, SessionKey: wechattest.NewSessionKey(), Created: time.Now().Add(-ago)}
		if err := st.Put(ctx, s, time.Hour); err != nil {
			t.Fatal(err)
		}
		return s
	}
	first := login(2 * time.Second)
	second := login(time.Second)
	third := login(0)
	if got, err := st.NewestSession(ctx, "wxnewest", openid); err != nil || got.SID != third.SID {
		t.Fatalf("newest session is %+v (%v), want the third login", got, err)
	}
	// Another user of the same app and the same user of another app are
	// not this user.
	if _, err := st.NewestSession(ctx, "wxother", openid); !errors.Is(err, errNoUserSession) {
		t.Fatalf("another app's user: %v, want errNoUserSession", err)
	}
	// Logout of the newest: revoked and deleted.
	st.Revoke(ctx, third.SID, time.Now().Add(time.Hour))
	st.Delete(ctx, third.SID)
	got, err := st.NewestSession(ctx, "wxnewest", openid)
	if err != nil || got.SID != second.SID {
		t.Fatalf("after logging out the newest: %+v %v, want the second login", got, err)
	}
	if other != nil {
		// The other instance holds the session in its L1 now.
		if o, err := other.NewestSession(ctx, "wxnewest", openid); err != nil || o.SID != second.SID {
			t.Fatalf("another instance finds %+v (%v), want the second login", o, err)
		}
	}
	newKey := wechattest.NewSessionKey()
	if err := st.SetSessionKey(ctx, got, newKey); err != nil {
		t.Fatal(err)
	}
	if got, err := st.NewestSession(ctx, "wxnewest", openid); err != nil || got.SessionKey != newKey {
		t.Fatalf("after a key reset the session has key %v (%v), want the new one", got, err)
	}
	if other != nil && !rdsEventually(time.Second, func() bool {
		got, err := other.NewestSession(ctx, "wxnewest", openid)
		return err == nil && got.SessionKey == newKey
	}) {
		t.Fatal("another instance still reads the old session_key a second after the reset")
	}
	st.Revoke(ctx, second.SID, time.Now().Add(time.Hour))
	st.Delete(ctx, first.SID)
	if s, err := st.NewestSession(ctx, "wxnewest", openid); !errors.Is(err, errNoUserSession) {
		t.Fatalf("with every session ended: %+v %v, want errNoUserSession", s, err)
	}
}

func TestMemoryStoreFindsTheNewestLiveSession(t *testing.T) {
	metrics.Init(nil)
	m, err := newMemoryStore(100, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Destruct()
	testNewestSession(t, m, nil)
}

func TestRedisStoreFindsTheNewestLiveSessionFromAnyInstance(t *testing.T) {
	srv := rdsStart(t)
	testNewestSession(t, rdsStore(t, srv, rdsKeyA), rdsStore(t, srv, rdsKeyA))
}

func TestUserIndexForgetsExpiredUsers(t *testing.T) {
	x := newUserIndex()
	for i := 0; i < 5000; i++ {
		x.add(&Session{SID: newSID(), AppID: "wx", OpenID: newSID(), Created: time.Now()}, time.Nanosecond)
	}
	time.Sleep(time.Millisecond)
	x.add(&Session{SID: newSID(), AppID: "wx", OpenID: "last", Created: time.Now()}, time.Hour)
	if n := len(x.users); n > 2048 {
		t.Fatalf("5001 users whose sessions expired but one left %d in the index", n)
	}
}
