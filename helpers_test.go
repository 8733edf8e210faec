package wechatauth

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

// errorBody and decodeError read an error answer (a copy of the helper in
// internal/apierr's tests: test helpers are not exported across packages).
type errorBody struct {
	Error         string `json:"error"`
	Message       string `json:"message"`
	WeChatErrcode int    `json:"wechat_errcode"`
}

func decodeError(t *testing.T, w *httptest.ResponseRecorder) errorBody {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q", ct)
	}
	var raw map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
		t.Fatalf("body %q is not JSON: %v", w.Body, err)
	}
	for k := range raw {
		if k != "error" && k != "message" && k != "wechat_errcode" {
			t.Errorf("unexpected field %q in %s", k, w.Body)
		}
	}
	if _, ok := raw["wechat_errcode"]; ok && raw["wechat_errcode"] == float64(0) {
		t.Errorf("wechat_errcode 0 present in %s", w.Body)
	}
	var b errorBody
	json.Unmarshal(w.Body.Bytes(), &b)
	if b.Message == "" {
		t.Errorf("no message for a person in %s", w.Body)
	}
	return b
}

// The test signing key and appid (copies of internal/token's test
// constants).
const (
	testSigningKey = "0123456789abcdef0123456789abcdef" // 32 bytes
	testAppID      = "wxtest0000000001"
)

// Signing keys of the rotation tests (copies of internal/token's).
const (
	ringKeyOld = "old-signing-key-for-rotation-tests-0123456789"
	ringKeyNew = "new-signing-key-for-rotation-tests-9876543210"
)
