package wechatauth

import (
	"testing"
	"time"
)

// Two revocations within one second: a token issued between them (dated
// at the first cut-off, so that the user could log in again at once) is
// refused by the second.
func TestSecondRevocationWithinASecondRefusesTokensBetween(t *testing.T) {
	m := &memoryStore{users: newUserState(), revoked: newRevocations(nil)}
	req := &userRequest{AppID: testAppID, OpenID: "oUser"}
	now := time.Now()
	first := nextCutOff([]userStore{m}, req, now)
	m.saveUser(t.Context(), &userRecord{AppID: testAppID, OpenID: "oUser", RevokedBefore: first, Keep: first.Add(time.Hour), Changed: now})
	h := &Handler{users: m.users}
	s := &Session{AppID: testAppID, OpenID: "oUser"}
	between := &identity{AppID: testAppID, OpenID: "oUser", Issued: h.issueTime(s).Truncate(time.Second), userKey: userKey(testAppID, "oUser")}
	if m.users.refused(between) {
		t.Fatal("a login right after a revocation is refused")
	}
	second := nextCutOff([]userStore{m}, req, now.Add(100*time.Millisecond))
	m.saveUser(t.Context(), &userRecord{AppID: testAppID, OpenID: "oUser", RevokedBefore: second, Keep: second.Add(time.Hour), Changed: now.Add(100 * time.Millisecond)})
	if !m.users.refused(between) {
		t.Error("a token issued between two revocations in one second survives the second")
	}
	other := &identity{AppID: testAppID, OpenID: "oOther", Issued: now.Add(-time.Hour), userKey: userKey(testAppID, "oOther")}
	if m.users.refused(other) {
		t.Error("another user's token is refused")
	}
}
