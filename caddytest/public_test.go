package caddytest

// `public <paths>`: requests on those paths pass on without a token, client
// identity headers are stripped there as everywhere, and a valid token, if
// sent, still sets the identity. Paths not listed still need a token.

import (
	"net/http"
	"testing"
)

func TestPublicPathsPassWithoutTokenButNeverWithClientIdentity(t *testing.T) {
	st := startStack(t, stackConfig{Directive: "\t\tpublic /health /static/* *.png\n"})
	st.addUser("public")
	lr := st.login(t, "public")

	for _, path := range []string{"/health", "/static/app.js", "/img/logo.png"} {
		t.Run(path+", spoofed identity, no token", func(t *testing.T) {
			r := send(t, http.MethodGet, st.Base+path, spoofedRequestHeader(""), "")
			wantStatus(t, r, http.StatusOK)
			checkNoSpoofedIdentity(t, r.Seen(t), "")
		})
		t.Run(path+", spoofed identity, bad token", func(t *testing.T) {
			r := send(t, http.MethodGet, st.Base+path, spoofedRequestHeader("Bearer not.a.token"), "")
			wantStatus(t, r, http.StatusOK)
			seen := r.Seen(t)
			checkNoSpoofedIdentity(t, seen, "")
			if v := seen.Header.Values("Authorization"); len(v) != 0 {
				t.Errorf("upstream got Authorization %q", v)
			}
		})
		t.Run(path+", valid token", func(t *testing.T) {
			r := send(t, http.MethodGet, st.Base+path, spoofedRequestHeader("Bearer "+lr.Token), "")
			wantStatus(t, r, http.StatusOK)
			checkNoSpoofedIdentity(t, r.Seen(t), lr.OpenID)
		})
	}
	for _, path := range []string{"/healthz", "/static", "/api/orders", "/img/logo.png.txt"} {
		t.Run(path+" is not public", func(t *testing.T) {
			before := st.Upstream.Count()
			wantError(t, send(t, http.MethodGet, st.Base+path, spoofedRequestHeader(""), ""), http.StatusUnauthorized, "unauthorized")
			if st.Upstream.Count() != before {
				t.Error("the request reached the upstream")
			}
		})
	}
}
