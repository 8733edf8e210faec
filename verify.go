package wechatauth

import (
	"net/http"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/idheader"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// headersToRemove is the answer header in which Envoy's ext_authz learns
// which request headers to delete before the request goes upstream. Envoy
// overwrites the headers an answer carries but keeps a client's copy of
// one the answer lacks, so every identity header verify does not set is
// named there.
const headersToRemove = "X-Envoy-Auth-Headers-To-Remove"

// verify answers a front proxy's forward-auth request (nginx auth_request,
// Traefik ForwardAuth, Envoy ext_authz, Caddy forward_auth): the token
// check of a proxied request, answered 200 with an empty body and the
// identity headers a proxied request gets, or the 401 (never a redirect:
// nginx turns one into a 500). With optional, a request without a valid
// token gets 200 and no identity.
//
// It never reads the body. A request that declares one (nginx's
// subrequest keeps the original Content-Length unless told otherwise)
// is answered at once and its connection closed after the answer,
// rather than waiting for a body that never comes.
func (h *Handler) verify(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if r.ContentLength != 0 {
		closeUnread(w, r)
	}
	id, aerr := h.authenticate(r)
	if aerr != nil && !h.Optional {
		return aerr
	}
	hdr := w.Header()
	set := 0 // the identity headers the answer sets, by index
	if id != nil {
		// The same code as a proxied request, so the answer carries
		// exactly what an upstream behind wechat_auth gets. ServeHTTP
		// stripped the client's identity headers first, so those on r
		// were set here.
		h.setIdentity(r, id)
		for i, name := range h.verifyRemove.Names {
			if v, ok := r.Header[name]; ok {
				hdr[name] = v
				set |= 1 << i
			}
		}
	}
	// One allocation for the answer's own values, not shared between
	// answers: a later handler may rewrite a value in place. net/http
	// writes Content-Length: 0 for an answer without a body.
	vals := &[2]string{"no-store", h.verifyRemove.Lists[set]}
	hdr["Cache-Control"] = vals[0:1:1]
	if vals[1] != "" {
		hdr[headersToRemove] = vals[1:2:2]
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// closeUnread makes the server close the connection after the answer
// instead of reading a body first: net/http drains up to 256 KiB of an
// unread body before it answers a keep-alive request, and after the
// handler, which waits forever for a body that is declared and never
// sent. The read deadline makes that read fail at once.
func closeUnread(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
	http.NewResponseController(w).SetReadDeadline(time.Now())
}

// verifyHeaders returns the identity headers a verify answer may set:
// those a proxied request gets.
func (h *Handler) verifyHeaders() []string {
	// Canonical: the keys setIdentity uses.
	names := []string{h.HeaderOpenID, h.HeaderAppID, h.HeaderUnionID, idheader.Source}
	if h.assertion != nil {
		names = append(names, h.assertion.header)
	}
	return names
}
