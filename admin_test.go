package wechatauth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
