package caddytest

// `public` admits only plain paths (issue 20, point 1): a path that an
// upstream may read as a protected one — Tomcat, Jetty and Spring strip
// ";params" and resolve ".." afterwards, other servers cut the path at NUL,
// LF, '#' or '?' — is judged as a protected path, 401 without a token, and
// never reaches the upstream. The requests are written raw on a TCP
// connection, so no client cleans their paths first.

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// sendRaw writes a GET request for target, byte for byte as given, with
// the extra header lines, and reads the answer.
func sendRaw(t *testing.T, target string, header ...string) *reply {
	t.Helper()
	u, err := url.Parse(siteBase)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	req := "GET " + target + " HTTP/1.1\r\nHost: " + u.Host + "\r\n"
	for _, h := range header {
		req += h + "\r\n"
	}
	req += "Connection: close\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	sent := false
	for _, h := range header {
		if k, v, ok := strings.Cut(h, ":"); ok && strings.EqualFold(k, "Authorization") {
			sent = sentBearer(&http.Request{Header: http.Header{"Authorization": {strings.TrimSpace(v)}}})
		}
	}
	return &reply{Status: resp.StatusCode, Header: resp.Header, Body: b, SentToken: sent}
}

func TestPublicPathsAdmitNoOtherPathInAnySpelling(t *testing.T) {
	st := startStack(t, stackConfig{Directive: "\t\tpublic /health /static/* *.png\n"})
	st.addUser("plain")
	lr := st.login(t, "plain")

	// Real public paths keep working, without a token.
	for _, path := range []string{"/health", "/static/app.js", "/img/a.png", "/static/%E5%9B%BE.png",
		// 报告（1）.png: fullwidth brackets, common in Chinese file names.
		"/static/%E6%8A%A5%E5%91%8A%EF%BC%881%EF%BC%89.png"} {
		t.Run(path+" is public", func(t *testing.T) {
			before := st.Upstream.Count()
			r := sendRaw(t, path)
			wantStatus(t, r, http.StatusOK)
			want, _ := url.PathUnescape(path)
			if st.Upstream.Count() != before+1 || st.Upstream.Last(t).Path != want {
				t.Errorf("the upstream did not get %s", path)
			}
		})
	}

	for _, path := range []string{
		"/static/..;/api/orders",
		"/static/..;/..;/api/orders",
		"/static/%2e%2e;/api/orders",
		"/static/%2E%2E;/api/orders",
		"/static/.%2e;/api/orders",
		"/static/%2e.;/api/orders",
		"/static/..%3b/api/orders",
		"/static/..%3B/api/orders",
		"/static/%2e%2e%3b/api/orders",
		"/static/.;/../api/orders",
		"/static/.;/api/orders",
		"/static/;x/../api/orders",
		"/static/%2e%2e/api/orders",
		"/static/..%2fapi/orders",
		"/static/%252e%252e/api/orders",
		"/static/..%5capi/orders",
		"/api/orders;.png",
		"/api/orders%3b.png",
		"/api/orders%3B.png",
		"/api/orders%00.png",
		"/api/orders%0a.png",
		"/api/orders%0d%0a.png",
		"/api/orders%09.png",
		"/api/orders%23.png",
		"/api/orders%3f.png",
		"/api/orders%5c.png",
		"/health;jsessionid=x",
		"/health%00",
		// Overlong UTF-8 spellings of '.', '/' and ';', which a lenient
		// decoder reads as those characters.
		"/static/%c0%ae%c0%ae/api/orders",
		"/static/%e0%80%ae%e0%80%ae/api/orders",
		"/static/..%c0%afapi/orders",
		"/api/orders%c0%bb.png",
		"/static/%ff/api/orders",
		// Fullwidth and other compatibility forms of '.', '/', '\', ';',
		// '#' and '?', which NFKC (Java's Normalizer, Python's unicodedata,
		// Windows' best-fit conversion) turns into those characters.
		"/static/%ef%bc%8e%ef%bc%8e/api/orders",
		"/static/..%ef%bc%8fapi/orders",
		"/static/..%ef%bc%bcapi/orders",
		"/static/%e2%80%a5/api/orders",
		"/static/%ef%b9%92%ef%b9%92/api/orders",
		"/api/orders%ef%bc%9b.png",
		"/api/orders%cd%be.png",
		"/api/orders%ef%bc%83.png",
		"/api/orders%ef%bc%9f.png",
		"/static/a%ef%bc%8fb.png",        // '／' is '/' under NFKC: another segment
		"/static/..%c2%a5api/orders",     // '¥' is '\' in Japanese code pages
		"/api/orders%c2%85.png",          // a C1 control
		"/static/.%e2%80%8b./api/orders", // ".." once the zero width space is dropped
		"/static/..%e2%88%95api/orders",  // DIVISION SLASH, '/' to iconv
	} {
		t.Run(path+" is protected", func(t *testing.T) {
			before := st.Upstream.Count()
			wantError(t, sendRaw(t, path), http.StatusUnauthorized, "unauthorized")
			if st.Upstream.Count() != before {
				t.Errorf("the request reached the upstream as %q", st.Upstream.Last(t).Path)
			}
			// A valid token still passes it on, as on any protected path.
			r := sendRaw(t, path, "Authorization: Bearer "+lr.Token)
			wantStatus(t, r, http.StatusOK)
			if got := r.Seen(t).Header.Get("X-Wx-Openid"); got != lr.OpenID {
				t.Errorf("X-Wx-Openid %q, want %q", got, lr.OpenID)
			}
		})
	}
}
