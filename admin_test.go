package wechatauth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/session"
)

func TestUserRequestTakesExactNamesOnce(t *testing.T) {
	var ok userRequest
	if aerr := ok.parse([]byte(`{"appid":"wxa","openid":"o1","until":"2030-01-02T15:04:05Z","reason":"fraud","note":"ignored"}`)); aerr != nil {
		t.Fatalf("a good body: %v", aerr.message)
	}
	if ok.AppID != "wxa" || ok.OpenID != "o1" || ok.Until == "" || ok.Reason != "fraud" {
		t.Fatalf("read %+v", ok)
	}
	for body, want := range map[string]string{
		`{"appid":"wxa","openid":"o1","openid":"o2"}`: "openid is given twice",
		`{"appid":"wxa","OpenID":"o1"}`:               "OpenID must be spelled openid",
		`{"APPID":"wxa","openid":"o1"}`:               "APPID must be spelled appid",
		`{"appid":"wxa","openid":1}`:                  "openid must be a string",
		`{"appid":"wxa","openid":"o1"}{}`:             "must be a JSON object",
		`["wxa","o1"]`:                                "must be a JSON object",
		`{"appid":"wxa",`:                             "must be a JSON object",
	} {
		var req userRequest
		aerr := req.parse([]byte(body))
		if aerr == nil || aerr.status != 400 || !strings.Contains(aerr.message, want) {
			t.Errorf("%s: %+v, want 400 saying %q", body, aerr, want)
		}
	}
}

// The admin API's store_unavailable says when to try again, as the
// routes' does.
func TestAdminStoreUnavailableSaysWhenToRetry(t *testing.T) {
	w := httptest.NewRecorder()
	writeAdminError(w, &adminError{http.StatusServiceUnavailable, "store_unavailable", "Applied on this instance only."})
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "2" || !strings.Contains(w.Body.String(), `"store_unavailable"`) {
		t.Fatalf("%d, Retry-After %q: %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	w = httptest.NewRecorder()
	writeAdminError(w, &adminError{http.StatusBadRequest, "invalid_request", "bad"})
	if w.Header().Get("Retry-After") != "" {
		t.Fatal("a 400 says to retry")
	}
}

// A revocation made on an instance that had not heard of a ban leaves the
// ban as it is once the two records meet; a ban or lift made on an
// instance whose clock is behind the one that decided the ban before it
// still wins where they meet, as the operator's latest decision.
func TestOperatorsLatestBanDecisionWins(t *testing.T) {
	now := time.Now()
	bannedElsewhere := &session.UserRecord{AppID: testAppID, OpenID: "oSkew", Changed: now.Add(-time.Minute), BanChanged: now.Add(-time.Minute), Ban: &session.Ban{Since: now.Add(-time.Minute)}}
	unknown := session.UserRecord{AppID: testAppID, OpenID: "oSkew"}
	rev := revocation(unknown, session.CutOff(now), now.Add(time.Hour), now)
	if got := session.MergeRecords(bannedElsewhere, rev); got.Ban == nil || !got.RevokedBefore.Equal(rev.RevokedBefore) {
		t.Errorf("a revocation that did not know of the ban: ban %v, cut-off %v; want the ban kept and the new cut-off", got.Ban, got.RevokedBefore)
	}

	// The ban was decided on an instance whose clock is 5 s ahead; this
	// one lifts it 2 s later (by the real time), knowing it.
	ahead := *bannedElsewhere
	ahead.Changed, ahead.BanChanged = now.Add(5*time.Second), now.Add(5*time.Second)
	lift := decide(ahead, nil, now.Add(2*time.Second))
	if got := session.MergeRecords(&ahead, lift); got.Ban != nil {
		t.Error("a lift made after a ban, on an instance whose clock is behind, left the ban in force")
	}
	ban := decide(*lift, &session.Ban{Since: now}, now)
	if got := session.MergeRecords(lift, ban); got.Ban == nil {
		t.Error("a ban made after a lift, on an instance whose clock is behind, did not take")
	}
	// A store shared with instances that may have decided meanwhile
	// dates them after what it holds (TestDecisionOnAnInstanceThatMissedTheLastOneWins).
	if !lift.Decided || !ban.Decided || rev.Decided {
		t.Errorf("marked Decided: lift %v, ban %v, revocation %v; want a ban and a lift only", lift.Decided, ban.Decided, rev.Decided)
	}
}
