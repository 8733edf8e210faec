package caddytest

// Ways a client could still smuggle an identity past wechat_auth, each seen
// at an upstream that records the exact bytes it receives:
//   - request trailers named like identity headers (Trailer: X-WX-OPENID and
//     a chunked body that ends with X-WX-OPENID: spoof);
//   - Connection: X-WX-OPENID, which would make reverse_proxy drop the
//     verified identity as a hop-by-hop header;
//   - dot spellings (X.WX.OPENID), which Caddy lets in with
//     expected_dot_headers;
//   - with `optional`, a Bearer token on a second Authorization line.
// And the header a Cloud Hosting app tests for: X-WX-SOURCE: wx_client on
// every verified request, never the client's copy.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawUpstream answers every request with 200 "ok" and keeps the exact bytes
// of each request it received, trailers included.
type rawUpstream struct {
	Addr string

	mu   sync.Mutex
	seen []string
}

func startRawUpstream(t *testing.T) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{Addr: ln.Addr().String()}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go u.serve(conn)
		}
	}()
	return u
}

func (u *rawUpstream) serve(conn net.Conn) {
	defer conn.Close()
	var raw strings.Builder
	br := bufio.NewReader(io.TeeReader(conn, &raw))
	for {
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body) // a chunked body's trailers are read with it
		u.mu.Lock()
		u.seen = append(u.seen, raw.String())
		u.mu.Unlock()
		raw.Reset()
		if _, err := io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"); err != nil {
			return
		}
	}
}

// Last returns the raw bytes of the last request received.
func (u *rawUpstream) Last(t *testing.T) string {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.seen) == 0 {
		t.Fatal("the raw upstream received no request")
	}
	return u.seen[len(u.seen)-1]
}

// rawStack is Caddy with wechat_auth (and extra directive lines) in front of
// a raw upstream, with one logged-in user.
type rawStack struct {
	*stack
	Raw   *rawUpstream
	Login loginResult
}

func startRawStack(t *testing.T, directive, global string) *rawStack {
	t.Helper()
	raw := startRawUpstream(t)
	st := startStack(t, stackConfig{Upstream: raw.Addr, Directive: directive, Global: global})
	st.addUser("raw")
	return &rawStack{stack: st, Raw: raw, Login: st.login(t, "raw")}
}

// rawRequest sends a raw HTTP/1.1 request to Caddy and requires a 200.
func rawRequest(t *testing.T, raw string) {
	t.Helper()
	resp, body, err := rawExchange("127.0.0.1:9080", raw)
	if err != nil {
		t.Fatalf("raw request: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("answer %d %s", resp.StatusCode, body)
	}
}

// headerLines returns the lines of a raw request whose field name, read
// case-insensitively with '_' and '.' as '-', is name.
func headerLines(raw, name string) []string {
	fold := strings.NewReplacer("_", "-", ".", "-")
	var lines []string
	for _, line := range strings.Split(raw, "\r\n") {
		k, _, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(fold.Replace(strings.TrimSpace(k)), name) {
			lines = append(lines, line)
		}
	}
	return lines
}

func TestIdentityTrailersNeverReachUpstream(t *testing.T) {
	for _, variant := range []struct {
		name, directive string
		withToken       bool
	}{
		{"with a valid token", "", true},
		{"optional, no token", "\t\toptional\n", false},
	} {
		rs := startRawStack(t, variant.directive, "")
		t.Run(variant.name, func(t *testing.T) {
			authLine := ""
			if variant.withToken {
				authLine = "Authorization: Bearer " + rs.Login.Token + "\r\n"
			}
			rawRequest(t, "POST /api/upload HTTP/1.1\r\nHost: localhost:9080\r\n"+authLine+
				"Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"+
				"Trailer: X-WX-OPENID, X-Wx-Source, X-Checksum\r\nConnection: close\r\n\r\n"+
				"5\r\nhello\r\n0\r\nX-WX-OPENID: oSPOOFED\r\nX-Wx-Source: SPOOFED\r\nX-Checksum: c1\r\n\r\n")
			got := rs.Raw.Last(t)
			if strings.Contains(got, "SPOOFED") {
				t.Errorf("the upstream received a client's identity trailer:\n%s", got)
			}
			if !strings.Contains(got, "X-Checksum: c1") {
				t.Errorf("other trailers must still pass, or the test shows nothing:\n%s", got)
			}
			if variant.withToken {
				if want := "X-Wx-Openid: " + rs.Login.OpenID; !strings.Contains(got, want) {
					t.Errorf("upstream lacks %q:\n%s", want, got)
				}
			}
		})
	}
}

func TestConnectionHeaderCannotDropTheVerifiedIdentity(t *testing.T) {
	rs := startRawStack(t, "", "")
	rawRequest(t, "GET /api/orders HTTP/1.1\r\nHost: localhost:9080\r\nAuthorization: Bearer "+rs.Login.Token+"\r\n"+
		"Connection: keep-alive, X-WX-OPENID, x-wx-appid\r\nConnection: X-WX-UNIONID, X_WX_SOURCE, close\r\n\r\n")
	got := rs.Raw.Last(t)
	for name, want := range map[string]string{
		"X-Wx-Openid":  rs.Login.OpenID,
		"X-Wx-Appid":   testAppID,
		"X-Wx-Unionid": rs.Login.UnionID,
		"X-Wx-Source":  "wx_client",
	} {
		lines := headerLines(got, name)
		if len(lines) != 1 || lines[0] != name+": "+want {
			t.Errorf("upstream got %s lines %q, want exactly %q:\n%s", name, lines, name+": "+want, got)
		}
	}
}

func TestDotSpellingsOfIdentityHeadersAreStripped(t *testing.T) {
	// Caddy drops dotted names unless told to keep them; only then does
	// wechat_auth see them, and it must strip them itself.
	const dotsKept = "\tservers {\n\t\texpected_dot_headers X.WX.OPENID x.wx.unionid X.Other\n\t}"
	for _, optional := range []bool{false, true} {
		directive := ""
		if optional {
			directive = "\t\toptional\n"
		}
		rs := startRawStack(t, directive, dotsKept)
		t.Run(fmt.Sprintf("optional=%v", optional), func(t *testing.T) {
			rawRequest(t, "GET /api/orders HTTP/1.1\r\nHost: localhost:9080\r\nAuthorization: Bearer "+rs.Login.Token+"\r\n"+
				"X.WX.OPENID: oSPOOFED\r\nx.wx.unionid: SPOOFED\r\nX.Other: kept\r\nConnection: close\r\n\r\n")
			got := rs.Raw.Last(t)
			if strings.Contains(got, "SPOOFED") {
				t.Errorf("a dotted identity header reached the upstream:\n%s", got)
			}
			if lines := headerLines(got, "X-Other"); len(lines) != 1 || !strings.HasSuffix(lines[0], ": kept") {
				t.Errorf("expected_dot_headers did not let X.Other through, so the test shows nothing:\n%s", got)
			}
			if lines := headerLines(got, "X-Wx-Openid"); len(lines) != 1 || lines[0] != "X-Wx-Openid: "+rs.Login.OpenID {
				t.Errorf("upstream got openid lines %q", lines)
			}
		})
	}
}

// TestEveryAliasSpellingOfIdentityHeadersIsStripped sends the identity
// headers spelt with each character besides '-' that CGI-style backends
// (PHP, WSGI) turn into '_' as they do '-', so that they would read
// X~WX~OPENID as X-WX-OPENID. None may reach the upstream; a control
// header spelt the same way shows that Caddy itself lets such names through.
func TestEveryAliasSpellingOfIdentityHeadersIsStripped(t *testing.T) {
	rs := startRawStack(t, "", "")
	var forged strings.Builder
	for i, c := range "!#$%&'*+^_`|~" {
		fmt.Fprintf(&forged, "X%cWX%cOPENID: SPOOFED%d\r\nx%cwx%cunionid: SPOOFED%d\r\n", c, c, i, c, c, i)
	}
	rawRequest(t, "GET /api/orders HTTP/1.1\r\nHost: localhost:9080\r\nAuthorization: Bearer "+rs.Login.Token+"\r\n"+
		forged.String()+"X~Other: kept\r\nConnection: close\r\n\r\n")
	got := rs.Raw.Last(t)
	if strings.Contains(got, "SPOOFED") {
		t.Errorf("an alias spelling of an identity header reached the upstream:\n%s", got)
	}
	if !strings.Contains(strings.ToLower(got), "x~other: kept") {
		t.Errorf("Caddy dropped X~Other itself, so the test shows nothing:\n%s", got)
	}
	if lines := headerLines(got, "X-Wx-Openid"); len(lines) != 1 || lines[0] != "X-Wx-Openid: "+rs.Login.OpenID {
		t.Errorf("upstream got openid lines %q", lines)
	}
}

func TestOptionalNeverForwardsABearerTokenOnAnyAuthorizationLine(t *testing.T) {
	st := startStack(t, stackConfig{Directive: "\t\toptional\n"})
	st.addUser("two-lines")
	lr := st.login(t, "two-lines")
	tests := []struct {
		name      string
		lines     []string
		openid    string   // the identity the upstream must see, if any
		wantLines []string // the Authorization lines the upstream must see
	}{
		{"Basic, then a valid Bearer", []string{"Basic dXNlcjpwYXNz", "Bearer " + lr.Token}, lr.OpenID, nil},
		{"a valid Bearer, then Basic", []string{"Bearer " + lr.Token, "Basic dXNlcjpwYXNz"}, lr.OpenID, nil},
		{"Basic, then a bad Bearer", []string{"Basic dXNlcjpwYXNz", "Bearer not.a.token"}, "", []string{"Basic dXNlcjpwYXNz"}},
		{"two Bearer lines", []string{"Bearer " + lr.Token, "Bearer " + lr.Token}, "", nil},
		{"a Bearer inside another line", []string{"Basic dXNlcjpwYXNz, Bearer " + lr.Token}, "", nil},
		{"Basic alone", []string{"Basic dXNlcjpwYXNz"}, "", []string{"Basic dXNlcjpwYXNz"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := send(t, http.MethodGet, st.Base+"/api/me", http.Header{"Authorization": tt.lines}, "")
			wantStatus(t, r, http.StatusOK)
			seen := r.Seen(t)
			for _, v := range seen.Header.Values("Authorization") {
				if strings.Contains(strings.ToLower(v), "bearer") {
					t.Errorf("upstream got a Bearer token: %q", v)
				}
			}
			if got := seen.Header.Values("Authorization"); strings.Join(got, "|") != strings.Join(tt.wantLines, "|") {
				t.Errorf("upstream Authorization %q, want %q", got, tt.wantLines)
			}
			if got := seen.Header.Get("X-Wx-Openid"); got != tt.openid {
				t.Errorf("upstream openid %q, want %q", got, tt.openid)
			}
		})
	}
}

func TestVerifiedRequestsCarryTheCloudHostingSourceHeader(t *testing.T) {
	st := startStack(t, stackConfig{Directive: "\t\toptional\n"})
	st.addUser("source")
	lr := st.login(t, "source")
	h := bearer(lr.Token)
	h["X-WX-SOURCE"] = []string{"spoofed-source"}
	seen := send(t, http.MethodGet, st.Base+"/api", h, "").Seen(t)
	if got := seen.Header.Values("X-Wx-Source"); len(got) != 1 || got[0] != "wx_client" {
		t.Errorf("verified request: upstream X-WX-SOURCE %q, want [wx_client]", got)
	}
	anon := send(t, http.MethodGet, st.Base+"/api", http.Header{"X-WX-SOURCE": {"spoofed-source"}}, "").Seen(t)
	if got := anon.Header.Values("X-Wx-Source"); len(got) != 0 {
		t.Errorf("anonymous request: upstream X-WX-SOURCE %q, want none", got)
	}
}
