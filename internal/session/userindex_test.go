package session

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
// one before, none live is ErrNoUserSession, and a replaced key is what
// later reads see (from a second store on the same backend too, when
// given).
func testNewestSession(t *testing.T, st, other Store) {
	ctx := context.Background()
	openid := "oNewest" + NewID()[:10]
	login := func(ago time.Duration) *Session {
		s := &Session{SID: NewID(), AppID: "wxnewest", OpenID: openid, SessionKey: wechattest.NewSessionKey(), Created: time.Now().Add(-ago)}
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
	if _, err := st.NewestSession(ctx, "wxother", openid); !errors.Is(err, ErrNoUserSession) {
		t.Fatalf("another app's user: %v, want ErrNoUserSession", err)
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
	if other != nil && !eventually(time.Second, func() bool {
		got, err := other.NewestSession(ctx, "wxnewest", openid)
		return err == nil && got.SessionKey == newKey
	}) {
		t.Fatal("another instance still reads the old session_key a second after the reset")
	}
	st.Revoke(ctx, second.SID, time.Now().Add(time.Hour))
	st.Delete(ctx, first.SID)
	if s, err := st.NewestSession(ctx, "wxnewest", openid); !errors.Is(err, ErrNoUserSession) {
		t.Fatalf("with every session ended: %+v %v, want ErrNoUserSession", s, err)
	}
}

func TestMemoryStoreFindsTheNewestLiveSession(t *testing.T) {
	metrics.Init(nil)
	m, err := NewMemory(100, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Destruct()
	testNewestSession(t, m, nil)
}

func TestUserIndexForgetsExpiredUsers(t *testing.T) {
	x := NewUserIndex()
	for i := 0; i < 5000; i++ {
		x.Add(&Session{SID: NewID(), AppID: "wx", OpenID: NewID(), Created: time.Now()}, time.Nanosecond)
	}
	time.Sleep(time.Millisecond)
	x.Add(&Session{SID: NewID(), AppID: "wx", OpenID: "last", Created: time.Now()}, time.Hour)
	if n := len(x.users); n > 2048 {
		t.Fatalf("5001 users whose sessions expired but one left %d in the index", n)
	}
}

// eventually reports whether cond holds within the given time.
func eventually(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}
