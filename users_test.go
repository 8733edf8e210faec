package wechatauth

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/identity"
	"github.com/caddy-wechat/wechatauth/internal/session"
	"github.com/caddy-wechat/wechatauth/wechattest"
)

// Two revocations within one second: a token issued between them (dated
// at the first cut-off, so that the user could log in again at once) is
// refused by the second.
func TestSecondRevocationWithinASecondRefusesTokensBetween(t *testing.T) {
	m, err := session.NewMemory(100, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Destruct()
	req := &userRequest{AppID: testAppID, OpenID: "oUser"}
	now := time.Now()
	first := nextCutOff(t.Context(), []session.UserStore{m}, req)
	m.SaveUser(t.Context(), &session.UserRecord{AppID: testAppID, OpenID: "oUser", RevokedBefore: first, Keep: first.Add(time.Hour), Changed: now})
	h := &Handler{users: m.Users()}
	s := &session.Session{AppID: testAppID, OpenID: "oUser"}
	between := &identity.Identity{AppID: testAppID, OpenID: "oUser", Issued: h.issueTime(s).Truncate(time.Second), Key: identity.UserKey(testAppID, "oUser")}
	if m.Users().Refused(between) {
		t.Fatal("a login right after a revocation is refused")
	}
	second := nextCutOff(t.Context(), []session.UserStore{m}, req)
	m.SaveUser(t.Context(), &session.UserRecord{AppID: testAppID, OpenID: "oUser", RevokedBefore: second, Keep: second.Add(time.Hour), Changed: now.Add(100 * time.Millisecond)})
	if !m.Users().Refused(between) {
		t.Error("a token issued between two session.Revocations in one second survives the second")
	}
	other := &identity.Identity{AppID: testAppID, OpenID: "oOther", Issued: now.Add(-time.Hour), Key: identity.UserKey(testAppID, "oOther")}
	if m.Users().Refused(other) {
		t.Error("another user's token is refused")
	}
}

// Revocations of one user in a row leave the user able to log in again at
// once: each waits for the cut-off before it to pass rather than go a
// second past it. Pushed ever further ahead, the cut-off would date the
// user's next token in the future, where it is refused.
func TestRevocationsInARowLetTheUserLogInAtOnce(t *testing.T) {
	m, err := session.NewMemory(100, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Destruct()
	req := &userRequest{AppID: testAppID, OpenID: "oUser"}
	var cut time.Time
	for range 7 {
		cut = nextCutOff(t.Context(), []session.UserStore{m}, req)
		m.SaveUser(t.Context(), &session.UserRecord{AppID: testAppID, OpenID: "oUser", RevokedBefore: cut, Keep: cut.Add(time.Hour), Changed: time.Now()})
	}
	// A login now is dated at the cut-off: no later than the next second.
	if ahead := time.Until(cut); ahead > time.Second {
		t.Fatalf("after 7 revocations in a row the cut-off is %v ahead: a login now would be dated then", ahead.Round(time.Millisecond))
	}
}

// userRules is a site on the memory store with a user logged in, and the
// means to cut or ban that user as the admin API does.
type userRules struct {
	*site
	us     session.UserStore
	code   string // the user's login code: a user of this test alone
	openid string
}

func newUserRules(t *testing.T) *userRules {
	t.Helper()
	s := newSite(t, &Handler{}, wechattest.Options{AutoCodes: true, ReusableCodes: true})
	// The memory store, and the bans in it, outlive the test (-count=2).
	code := "same-user-" + session.NewID()[:8]
	a := s.login(code)
	return &userRules{site: s, us: s.h.store.(session.UserStore), code: code, openid: a.OpenID}
}

func (u *userRules) Record(cut time.Time, ban *session.Ban) {
	u.t.Helper()
	rec := &session.UserRecord{AppID: siteAppID, OpenID: u.openid, RevokedBefore: cut, Keep: cut.Add(time.Hour), Changed: time.Now(), Ban: ban}
	if err := u.us.SaveUser(context.Background(), rec); err != nil {
		u.t.Fatal(err)
	}
}

// A login right after a revocation is the user's live session: its
// session is dated like its token, not before the cut-off, so the
// gateway's session-key services find it.
func TestLoginRightAfterARevocationIsTheUsersLiveSession(t *testing.T) {
	u := newUserRules(t)
	u.Record(nextCutOff(t.Context(), []session.UserStore{u.us}, &userRequest{AppID: siteAppID, OpenID: u.openid}), nil)
	again := u.login(u.code)
	if w := u.serve(http.MethodGet, "/api", "", "", bearer(again.Token)); w.Code != http.StatusTeapot {
		t.Fatalf("the new login's token: %d %s", w.Code, w.Body)
	}
	s, err := u.h.store.NewestSession(context.Background(), siteAppID, u.openid)
	if err != nil {
		t.Fatalf("newest session after a login right after a revocation: %v", err)
	}
	if s.Created.Before(u.us.Users().Record(siteAppID, u.openid).RevokedBefore) {
		t.Errorf("the session is dated %v, before the cut-off", s.Created)
	}
}

// A token that slipped past a ban (issued after its cut-off, as on an
// instance that had not heard of the ban yet) is not renewed, and the
// banned user has no live session for the session-key services.
func TestBannedUserCannotRefreshASlippedToken(t *testing.T) {
	u := newUserRules(t)
	slipped := u.login(u.code)
	u.Record(time.Now().Add(-time.Hour), &session.Ban{Since: time.Now()})
	if w := u.serve(http.MethodGet, "/api", "", "", bearer(slipped.Token)); w.Code != http.StatusTeapot {
		t.Fatalf("the slipped token should still pass a proxied request for this test to mean anything: %d", w.Code)
	}
	w := u.serve(http.MethodPost, "/wx/refresh", "", "", bearer(slipped.Token))
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "user_blocked") {
		t.Errorf("refresh under a ban: %d %s, want 403 user_blocked", w.Code, w.Body)
	}
	if _, err := u.h.store.NewestSession(context.Background(), siteAppID, u.openid); !errors.Is(err, session.ErrNoUserSession) {
		t.Errorf("newest session of a banned user: %v, want none", err)
	}
}

// A cut-off is kept until every session begun before it has ended and
// every token issued before it has expired, even one issued under a
// longer token_ttl than any site has now.
func TestUserCutOffIsKeptForSessionsAndLongLivedTokens(t *testing.T) {
	u := newUserRules(t)
	stores, ttl := storesOf(siteAppID)
	if len(stores) != 1 || ttl < time.Duration(u.h.SessionTTL) {
		t.Fatalf("storesOf: %d stores, keep for %v, want at least session_ttl %v", len(stores), ttl, time.Duration(u.h.SessionTTL))
	}
	horizon := time.Now().Add(30 * 24 * time.Hour)
	if err := u.h.store.ExtendHorizon(context.Background(), horizon); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	if keep := keepUntil(context.Background(), stores, cut, ttl); keep.Before(horizon) || keep.Before(cut.Add(time.Duration(u.h.SessionTTL))) {
		t.Errorf("cut-off kept until %v: before the token horizon %v or the end of sessions begun before it", keep, horizon)
	}
}
