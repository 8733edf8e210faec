package token

import (
	"bufio"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The fuzz target of the token codec; see the root package's fuzz_test.go
// for how to fuzz longer.

// Fuzz tokens are issued at a fixed time for a century, so the committed
// seed corpus holds a token that verifies for as long as this test exists.
var (
	fuzzTokenIssued = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	fuzzTokenTTL    = 100 * 365 * 24 * time.Hour
)

func fuzzTokenCodec() *Codec {
	return New([]byte(testSigningKey), IssuerProduction, fuzzTokenTTL, map[string]string{testAppID: "secret"})
}

// fuzzToken is the only token FuzzVerifyToken may see verified. It is in
// the seed corpus as testdata/fuzz/FuzzVerifyToken/valid_token.
func fuzzToken(t testing.TB) string {
	tok, _, err := fuzzTokenCodec().Issue(testSession().Subject, fuzzTokenIssued)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func FuzzVerifyToken(f *testing.F) {
	valid := fuzzToken(f)
	f.Add(valid)
	f.Fuzz(func(t *testing.T, raw string) {
		tc := fuzzTokenCodec()
		now := time.Now()
		id, err := tc.Verify(raw)
		if err == nil {
			if raw != valid {
				t.Fatalf("verified %q, which is not the token issued", raw)
			}
			if id.OpenID != testSession().OpenID || id.SID != testSession().SID || id.AppID != testAppID {
				t.Fatalf("identity %+v", id)
			}
		} else if raw == valid {
			t.Fatalf("the token issued is refused: %v", err)
		}
		// The hot path's cache never admits what verify refuses, and
		// serves what it admitted the same way a second time.
		for range 2 {
			cid, cerr := tc.VerifyCached(raw, now)
			if (cerr == nil) != (err == nil) {
				t.Fatalf("verify: %v, verifyCached: %v", err, cerr)
			}
			if cerr == nil && (cid.OpenID != id.OpenID || cid.UnionID != id.UnionID || cid.AppID != id.AppID || cid.SID != id.SID || !cid.Expires.Equal(id.Expires)) {
				t.Fatalf("verifyCached %+v, verify %+v", cid, id)
			}
		}
	})
}

// TestFuzzSeedTokenIsTheIssuedToken keeps the committed valid_token seed in
// step with the codec: if token issuing changes, the seed is regenerated
// rather than silently becoming one more refused string.
func TestFuzzSeedTokenIsTheIssuedToken(t *testing.T) {
	b, err := readSeed("testdata/fuzz/FuzzVerifyToken/valid_token")
	if err != nil {
		t.Fatal(err)
	}
	if want := fuzzToken(t); b != want {
		t.Fatalf("testdata/fuzz/FuzzVerifyToken/valid_token holds\n%s\nbut the codec issues\n%s\nupdate the seed", b, want)
	}
}

// readSeed reads the single string value of a seed corpus file.
func readSeed(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "string(") || !strings.HasSuffix(lines[1], ")") {
		return "", errors.New(path + " is not a one-string seed file")
	}
	return strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "string("), ")"))
}
