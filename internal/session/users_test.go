package session

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/identity"
)

// A revocation made on an instance that did not hear of a ban decided
// before it leaves that ban as it is, whichever instance merges the two,
// while its own cut-off holds; a lift decided after a ban ends it, also
// from a record written before BanChanged existed.
func TestMergeTakesTheBanDecidedLast(t *testing.T) {
	t0 := time.Now().Add(-time.Hour)
	t1, t2 := t0.Add(time.Minute), t0.Add(2*time.Minute)
	ban := &UserRecord{AppID: "wx", OpenID: "o", Changed: t0, BanChanged: t0, Ban: &Ban{Since: t0}, RevokedBefore: t0, Keep: t0.Add(time.Hour)}
	revoke := &UserRecord{AppID: "wx", OpenID: "o", Changed: t1, RevokedBefore: t1, Keep: t1.Add(time.Hour)}
	revoke.KeepBan(&UserRecord{}) // its instance knew of no ban
	for name, got := range map[string]*UserRecord{
		"revoke into ban": MergeRecords(ban, revoke),
		"ban into revoke": MergeRecords(revoke, ban),
	} {
		if got.Ban == nil || !got.RevokedBefore.Equal(t1) || !got.Changed.Equal(t1) {
			t.Errorf("%s: ban %v, cut-off %v, changed %v; want the ban kept, the revocation's cut-off and time", name, got.Ban, got.RevokedBefore, got.Changed)
		}
	}

	// A lift from an earlier version: no ban_changed, Changed stands for it.
	var lift UserRecord
	if err := json.Unmarshal([]byte(`{"appid":"wx","openid":"o","keep":"`+t0.Format(time.RFC3339Nano)+`","changed":"`+t2.Format(time.RFC3339Nano)+`"}`), &lift); err != nil {
		t.Fatal(err)
	}
	if got := MergeRecords(MergeRecords(ban, revoke), &lift); got.Ban != nil {
		t.Errorf("a lift decided after the ban left it: %+v", got.Ban)
	}
}

// Differing names the records Redis lacks or holds otherwise, and not one
// it holds as it is here, read back in another time zone.
func TestDifferingIgnoresTimeZones(t *testing.T) {
	u := NewUsers()
	now := time.Now().In(time.FixedZone("CST", 8*3600))
	held := &UserRecord{AppID: "wx", OpenID: "held", Changed: now, BanChanged: now, Keep: now.Add(time.Hour), Ban: &Ban{Since: now, Reason: "r"}}
	u.Merge(held)
	u.Merge(&UserRecord{AppID: "wx", OpenID: "missing", Changed: now, Keep: now.Add(time.Hour)})
	u.Merge(&UserRecord{AppID: "wx", OpenID: "older", Changed: now, Keep: now.Add(time.Hour)})
	b, _ := json.Marshal(held)
	var read UserRecord
	if err := json.Unmarshal(b, &read); err != nil {
		t.Fatal(err)
	}
	read.Changed, read.BanChanged, read.Keep, read.Ban.Since = read.Changed.UTC(), read.BanChanged.UTC(), read.Keep.UTC(), read.Ban.Since.UTC()
	older := &UserRecord{AppID: "wx", OpenID: "older", Changed: now.Add(-time.Minute), Keep: now.Add(time.Hour)}
	got := u.Differing(map[string]*UserRecord{identity.UserKey("wx", "held"): &read, identity.UserKey("wx", "older"): older})
	if len(got) != 2 || got[0].OpenID == "held" || got[1].OpenID == "held" {
		t.Fatalf("Differing gave %d records (%+v), want missing and older", len(got), got)
	}
}

// Two bans decided at the same time (two instances behind a third's
// clock each decide just after its decision) merge to the same one in
// either order.
func TestMergeOrdersBansDecidedAtOnceTheSameWayEverywhere(t *testing.T) {
	at := time.Now()
	ban := &UserRecord{AppID: "wx", OpenID: "o", Changed: at, BanChanged: at, Ban: &Ban{Since: at}}
	lift := &UserRecord{AppID: "wx", OpenID: "o", Changed: at.Add(time.Second), BanChanged: at}
	other := &UserRecord{AppID: "wx", OpenID: "o", Changed: at, BanChanged: at, Ban: &Ban{Since: at, Reason: "z"}}
	for _, pair := range [][2]*UserRecord{{ban, lift}, {ban, other}, {lift, other}} {
		a, b := MergeRecords(pair[0], pair[1]), MergeRecords(pair[1], pair[0])
		if (a.Ban == nil) != (b.Ban == nil) || a.Ban != nil && a.Ban.Reason != b.Ban.Reason {
			t.Errorf("merged one way: %+v, the other: %+v", a.Ban, b.Ban)
		}
	}
}

// A cut-off that stops mattering while its record is held stops costing
// the proxied path a lookup once a login tidies the records, with no
// sync.
func TestCutOffThatStopsMatteringLeavesTheFastPath(t *testing.T) {
	u := NewUsers()
	now := time.Now()
	u.Merge(&UserRecord{AppID: "wx", OpenID: "o", RevokedBefore: now, Keep: now.Add(50 * time.Millisecond), Changed: now})
	if u.n.Load() != 1 {
		t.Fatal("a cut-off that matters is not checked")
	}
	time.Sleep(60 * time.Millisecond)
	u.Banned("wx", "someone", time.Now()) // a login
	if n := u.n.Load(); n != 0 {
		t.Fatalf("%d cut-offs still checked after the only one stopped mattering", n)
	}
}

// Bans decided at the same time are ordered by their start, then their
// end (none is the latest), on every instance alike; the Decided mark of
// an operator's record is neither sent nor kept.
func TestTiedBansAndTheDecidedMark(t *testing.T) {
	at := time.Now()
	rec := func(since, until time.Time) *UserRecord {
		return &UserRecord{AppID: "wx", OpenID: "o", Changed: at, BanChanged: at, Ban: &Ban{Since: since, Until: until}}
	}
	for name, c := range map[string]struct{ win, lose *UserRecord }{
		"later start":     {rec(at, time.Time{}), rec(at.Add(-time.Second), time.Time{})},
		"later end":       {rec(at, at.Add(2*time.Hour)), rec(at, at.Add(time.Hour))},
		"no end over end": {rec(at, time.Time{}), rec(at, at.Add(time.Hour))},
	} {
		for _, got := range []*UserRecord{MergeRecords(c.win, c.lose), MergeRecords(c.lose, c.win)} {
			if !got.Ban.Since.Equal(c.win.Ban.Since) || !got.Ban.Until.Equal(c.win.Ban.Until) {
				t.Errorf("%s: merged to %+v, want %+v", name, got.Ban, c.win.Ban)
			}
		}
	}

	decided := rec(at, time.Time{})
	decided.Decided = true
	if b, _ := json.Marshal(decided); strings.Contains(strings.ToLower(string(b)), "decided") {
		t.Errorf("the Decided mark is sent: %s", b)
	}
	u := NewUsers()
	u.Merge(decided)
	if got := u.Record("wx", "o"); got.Decided {
		t.Error("the Decided mark is kept in the records")
	}
}
