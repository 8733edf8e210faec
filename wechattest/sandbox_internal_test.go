package wechattest

import (
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
)

// A sandbox faces whoever reaches it: the codes it is sent must not pile up
// in memory.
func TestReusableAutoCodesKeepNothingPerCode(t *testing.T) {
	s := NewServer(Options{AutoCodes: true, ReusableCodes: true, UnionID: true})
	s.AddApp("wxapp", "secret")
	login := func(code string) string {
		q := url.Values{"appid": {"wxapp"}, "secret": {"secret"}, "js_code": {code}, "grant_type": {"authorization_code"}}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest("GET", PathCode2Session+"?"+q.Encode(), nil))
		return w.Body.String()
	}
	first := login("same")
	for i := 0; i < 1000; i++ {
		login("code-" + strconv.Itoa(i))
	}
	if again := login("same"); again != first {
		t.Fatalf("the same code gave another answer:\n%s\n%s", first, again)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.codes) != 0 || len(s.users) != 0 {
		t.Fatalf("1001 sandbox logins left %d codes and %d users in memory", len(s.codes), len(s.users))
	}
}
