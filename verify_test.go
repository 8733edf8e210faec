package wechatauth

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-wechat/wechatauth/internal/idheader"
	"github.com/caddy-wechat/wechatauth/wechattest"
)

// removed returns the names an answer asks Envoy to remove.
func removed(hdr http.Header) []string {
	v := hdr.Get(headersToRemove)
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// identityOf returns the identity headers of hdr (x-wx-* and the given
// extra names), canonical name → values.
func identityOf(hdr http.Header, extra ...string) map[string]string {
	m := map[string]string{}
	for k, v := range hdr {
		if idheader.HasPrefix(k, "x-wx-") || slices.ContainsFunc(extra, func(e string) bool { return strings.EqualFold(e, k) }) {
			m[http.CanonicalHeaderKey(k)] = strings.Join(v, "|")
		}
	}
	return m
}

func TestVerifyAnswersWhatAProxiedRequestGets(t *testing.T) {
	for _, tc := range []struct {
		name    string
		unionid bool
	}{{"user with unionid", true}, {"user without unionid", false}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t, &Handler{Assertion: true}, wechattest.Options{AutoCodes: true, UnionID: tc.unionid})
			a := s.login("c1")
			hdr := bearer(a.Token)
			hdr["X-Wx-Unionid"] = []string{"uForged"}
			hdr["X-Wx-Openid"] = []string{"oForged"}
			s.serve(http.MethodGet, "/api/orders", "", "", hdr)
			proxied := identityOf(s.up.header)
			if proxied["X-Wx-Openid"] != a.OpenID {
				t.Fatalf("proxied request carries %v", proxied)
			}
			for _, method := range []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
				for _, path := range []string{"/wx/verify", "/wx/verify/", "/wx/verify/api/orders?page=1"} {
					s.up.called = 0
					hdr := bearer(a.Token)
					hdr["X-Wx-Unionid"] = []string{"uForged"}
					hdr["X_WX_OPENID"] = []string{"oForged"}
					w := s.serve(method, path, "", "", hdr)
					if w.Code != http.StatusOK || w.Body.Len() != 0 || s.up.called != 0 {
						t.Fatalf("%s %s: %d %q, upstream called %d times; want 200, empty body, no upstream", method, path, w.Code, w.Body, s.up.called)
					}
					got := identityOf(w.Header())
					delete(got, http.CanonicalHeaderKey(headersToRemove))
					// The assertion is made once per token: the same string.
					if !mapsEqual(got, proxied) {
						t.Fatalf("%s %s: verify answered identity %v, a proxied request gets %v", method, path, got, proxied)
					}
					rm := removed(w.Header())
					if slices.Contains(rm, "x-wx-openid") || slices.Contains(rm, "x-wx-appid") || slices.Contains(rm, "x-wx-assertion") {
						t.Fatalf("%s %s: asks Envoy to remove a header it sets: %v", method, path, rm)
					}
					if !tc.unionid && !slices.Contains(rm, "x-wx-unionid") {
						t.Fatalf("%s %s: no unionid, but %s = %v lacks x-wx-unionid", method, path, headersToRemove, rm)
					}
					if tc.unionid && slices.Contains(rm, "x-wx-unionid") {
						t.Fatalf("%s %s: asks Envoy to remove the unionid it sets", method, path)
					}
					if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
						t.Fatalf("Cache-Control %q", cc)
					}
				}
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestVerifyRefusesWithThe401NeverARedirect(t *testing.T) {
	s := newSite(t, &Handler{}, wechattest.Options{AutoCodes: true})
	a := s.login("c1")
	revoked := s.login("c2")
	if w := s.serve(http.MethodPost, "/wx/logout", "", "", bearer(revoked.Token)); w.Code != http.StatusNoContent {
		t.Fatalf("logout: %d %s", w.Code, w.Body)
	}
	tests := []struct {
		name      string
		method    string
		hdr       http.Header
		code      string
		challenge string
	}{
		{"no token", "GET", http.Header{"X-Wx-Openid": {"oForged"}}, "unauthorized", `Bearer realm="wechat_auth"`},
		{"no token, POST", "POST", nil, "unauthorized", `Bearer realm="wechat_auth"`},
		{"garbage token", "GET", bearer("garbage"), "invalid_token", `Bearer realm="wechat_auth", error="invalid_token"`},
		{"cut token", "DELETE", bearer(a.Token[:len(a.Token)-4]), "invalid_token", `Bearer realm="wechat_auth", error="invalid_token"`},
		{"revoked token", "GET", bearer(revoked.Token), "invalid_token", `Bearer realm="wechat_auth", error="invalid_token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := s.serve(tt.method, "/wx/verify/api", "", "", tt.hdr)
			if w.Code != http.StatusUnauthorized || decodeError(t, w).Error != tt.code {
				t.Fatalf("%d %s, want 401 %s", w.Code, w.Body, tt.code)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tt.challenge {
				t.Fatalf("WWW-Authenticate %q, want %q", got, tt.challenge)
			}
			if loc := w.Header().Get("Location"); loc != "" {
				t.Fatalf("Location %q on a verify answer", loc)
			}
			for k := range w.Header() {
				if idheader.HasPrefix(k, "x-wx-") {
					t.Fatalf("401 carries %s", k)
				}
			}
		})
	}
}

func TestVerifyWithOptionalAnswers200WithoutIdentity(t *testing.T) {
	s := newSite(t, &Handler{Optional: true, Assertion: true}, wechattest.Options{AutoCodes: true, UnionID: true})
	a := s.login("c1")
	for _, tt := range []struct {
		name     string
		hdr      http.Header
		identity bool
	}{
		{"no token", http.Header{"X-Wx-Openid": {"oForged"}, "X-Wx-Assertion": {"forged"}}, false},
		{"invalid token", http.Header{"Authorization": {"Bearer garbage"}, "X-Wx-Unionid": {"uForged"}}, false},
		{"valid token", bearer(a.Token), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := s.serve(http.MethodGet, "/wx/verify", "", "", tt.hdr)
			if w.Code != http.StatusOK || w.Body.Len() != 0 {
				t.Fatalf("%d %q, want 200 and no body", w.Code, w.Body)
			}
			id := identityOf(w.Header())
			delete(id, http.CanonicalHeaderKey(headersToRemove))
			if !tt.identity {
				if len(id) != 0 {
					t.Fatalf("anonymous answer carries identity %v", id)
				}
				rm := removed(w.Header())
				for _, n := range []string{"x-wx-openid", "x-wx-appid", "x-wx-unionid", "x-wx-source", "x-wx-assertion"} {
					if !slices.Contains(rm, n) {
						t.Fatalf("%s = %v lacks %s", headersToRemove, rm, n)
					}
				}
				return
			}
			if id["X-Wx-Openid"] != a.OpenID || id["X-Wx-Unionid"] != a.UnionID || id["X-Wx-Assertion"] == "" {
				t.Fatalf("identity %v", id)
			}
		})
	}
}

// TestVerifyNeverWaitsForADeclaredBody is nginx's auth_request without
// `proxy_set_header Content-Length ""`: the subrequest keeps the original
// Content-Length and sends no body.
func TestVerifyNeverWaitsForADeclaredBody(t *testing.T) {
	s := newSite(t, &Handler{}, wechattest.Options{AutoCodes: true})
	a := s.login("c1")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
		s.h.ServeHTTP(w, r, s.up)
	}))
	defer srv.Close()
	for _, tt := range []struct {
		name, auth, framing string
		status              int
	}{
		{"token, Content-Length", "Authorization: Bearer " + a.Token + "\r\n", "Content-Length: 1000\r\n", 200},
		{"no token, Content-Length", "", "Content-Length: 1000\r\n", 401},
		{"token, chunked", "Authorization: Bearer " + a.Token + "\r\n", "Transfer-Encoding: chunked\r\n", 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(3 * time.Second))
			start := time.Now()
			_, err = conn.Write([]byte("POST /wx/verify HTTP/1.1\r\nHost: x\r\n" + tt.auth + tt.framing + "Content-Type: application/json\r\n\r\n"))
			if err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer while the body is pending: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if !resp.Close {
				t.Fatal("the answer keeps the connection, whose next bytes would be the body")
			}
			// The server closes the connection rather than reading on.
			if _, err := br.ReadByte(); err == nil {
				t.Fatal("more bytes after the answer")
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Fatalf("answered after %v", took)
			}
		})
	}
}

func TestRoutesKeepTheirMethods(t *testing.T) {
	s := newSite(t, &Handler{Assertion: true}, wechattest.Options{AutoCodes: true})
	for _, tt := range []struct {
		method, path, allow string
	}{
		{"GET", "/wx/login", "POST"},
		{"PUT", "/wx/refresh", "POST"},
		{"DELETE", "/wx/logout", "POST"},
		{"POST", "/wx/jwks.json", "GET, HEAD"},
	} {
		w := s.serve(tt.method, tt.path, "", "", nil)
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != tt.allow {
			t.Errorf("%s %s: %d Allow %q, want 405 Allow %q", tt.method, tt.path, w.Code, w.Header().Get("Allow"), tt.allow)
		}
	}
	// A path beside the verify subtree is a proxied request.
	w := s.serve(http.MethodGet, "/wx/verifyx", "", "", nil)
	if w.Code != http.StatusUnauthorized || s.up.called != 0 {
		t.Fatalf("/wx/verifyx: %d", w.Code)
	}
}
