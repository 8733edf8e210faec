package wxpay

import (
	"errors"
	"testing"
)

func TestWithResourceKeepsEveryOtherByte(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{
			`{"id":"a","resource":{"ciphertext":"x"},"summary":"支付成功"}`,
			`{"id":"a","resource":{"out_trade_no":"T1"},"summary":"支付成功"}`,
		},
		{ // pretty-printed, resource first, odd spacing and an escaped name
			"{\n  \"resourc\\u0065\" :\t{ \"nonce\": \"n\" } ,\n  \"id\": \"a\\u0062\", \"extra\": [1, 2.50, null]\n}\n",
			"{\n  \"resourc\\u0065\" :\t{\"out_trade_no\":\"T1\"} ,\n  \"id\": \"a\\u0062\", \"extra\": [1, 2.50, null]\n}\n",
		},
	} {
		n, err := ParseNotification([]byte(c.in))
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		out, err := n.WithResource([]byte(` {"out_trade_no":"T1"}` + "\n"))
		if err != nil || string(out) != c.want {
			t.Errorf("rewritten %q, %v\nwant      %q", out, err, c.want)
		}
	}
	n, _ := ParseNotification([]byte(`{"id":"ab","resource":{}}`))
	if n.ID != "ab" {
		t.Fatalf("id %q", n.ID)
	}
	if _, err := n.WithResource([]byte(`Hello World`)); !errors.Is(err, ErrVerification) {
		t.Fatalf("a plaintext that is not JSON: %v", err)
	}
}

func TestParseNotificationRefusesAmbiguousBodies(t *testing.T) {
	for _, body := range []string{
		``,
		`[]`,
		`{"id":"a"}`,
		`{"id":"a","resource":"x"}`,
		`{"id":"a","resource":null}`,
		`{"id":"a","resource":{},"resource":{}}`,
		`{"id":"a","id":"b","resource":{}}`,
		`{"id":1,"resource":{}}`,
		`{"id":"a","resource":{}} {}`,
		`{"id":"a","resource":{}} x`,
		`{"id":"a","resource":{"nonce":1}}`,
		`{"id":"a","resource":{}`,
		"{\"id\":\"a\",\"resource\":{\"a\":\"\xff\"}}x",
	} {
		if _, err := ParseNotification([]byte(body)); !errors.Is(err, ErrVerification) {
			t.Errorf("%q: %v, want a refusal", body, err)
		}
	}
}

func FuzzParseNotification(f *testing.F) {
	f.Add([]byte(sdk2021Body))
	f.Add([]byte(`{"resource":{"nonce":"0123456789ab","algorithm":"AEAD_AES_256_GCM"}}`))
	m, err := New(Config{MchID: testMchID, PrivateKey: func() string { _, p := merchantKey(f); return p }(), SerialNo: testSerial, APIv3Key: testAPIKey})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := ParseNotification(body)
		if err != nil {
			return
		}
		if _, err := m.DecryptResource(n.Resource); err == nil {
			t.Fatal("a fuzzed resource decrypted")
		}
		if _, err := n.WithResource([]byte(`{"a":1}`)); err != nil {
			t.Fatal(err)
		}
	})
}
