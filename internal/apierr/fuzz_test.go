package apierr

import (
	"bytes"
	"mime"
	"net/http"
	"strings"
	"testing"
)

// A fuzz target of the package; see the root package's fuzz_test.go for
// how to fuzz longer. Its seed corpus is under testdata/fuzz/.

func FuzzParseFields(f *testing.F) {
	f.Add("application/json", []byte(`{"code":"c1"}`))
	f.Add("application/json", []byte(`{"code":"A","code":"B"}`))
	f.Add("application/x-www-form-urlencoded", []byte(`code=A&code=B`))
	f.Add("application/x-www-form-urlencoded", []byte(`{"encryptedData":"a b"}`))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		got, aerr := ParseFields(contentType, body)
		if aerr != nil {
			if got != nil {
				t.Fatalf("fields %+v returned with error %v", got, aerr)
			}
			if aerr.Status() != http.StatusBadRequest || aerr.Code() != "invalid_request" {
				t.Fatalf("answer %d %s, want 400 invalid_request", aerr.Status(), aerr.Code())
			}
			return
		}
		if got == nil {
			t.Fatal("nil fields with a nil error")
		}
		// A form-typed body that is a JSON object is read as JSON, whose
		// spaces are the client's own.
		isJSON := bytes.HasPrefix(bytes.TrimSpace(body), []byte("{"))
		if mt, _, _ := mime.ParseMediaType(contentType); mt == "application/x-www-form-urlencoded" && !isJSON {
			if strings.Contains(got.EncryptedData, " ") || strings.Contains(got.IV, " ") {
				t.Fatalf("form base64 not repaired: %+v", got)
			}
		}
	})
}
