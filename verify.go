package wechatauth

import (
	"crypto/ecdsa"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/caddy-wechat/wechatauth/internal/assertion"
	"github.com/caddy-wechat/wechatauth/internal/idheader"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"golang.org/x/net/http/httpguts"
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
// is answered at once and its connection closed after the answer, by the
// route (apierr.Ignored), rather than waiting for a body that never comes.
// The header-only answer then states its length, so that the route can
// send it complete before it reads what of the body still comes.
func (h *Handler) verify(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if r.ContentLength != 0 && r.ProtoMajor == 1 {
		w.Header().Set("Content-Length", "0") // an error answer sets its own
	}
	id, byCookie, aerr := h.authenticateAny(r)
	if aerr != nil && !h.Optional {
		return aerr
	}
	source := idheader.SourceClient
	if byCookie {
		source = idheader.SourceWeb
	}
	hdr := w.Header()
	set := 0 // the identity headers the answer sets, by index
	if id != nil {
		// The same code as a proxied request, so the answer carries
		// exactly what an upstream behind wechat_auth gets. ServeHTTP
		// stripped the client's identity headers first, so those on r
		// were set here.
		h.setIdentity(r, id, source)
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

// verifyHeaders returns the identity headers a verify answer may set:
// those a proxied request gets.
func (h *Handler) verifyHeaders() []string {
	// Canonical: the keys setIdentity uses.
	names := []string{h.HeaderOpenID, h.HeaderAppID, h.HeaderUnionID, idheader.Source}
	if h.assertion != nil {
		names = append(names, h.assertion.Header())
	}
	return names
}

// jwks serves the assertion's public key as an RFC 7517 JWK Set. It needs
// no token: upstreams fetch it to verify assertions.
func (h *Handler) jwks(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	b := h.assertion.JWKS()
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "public, max-age=300")
	hdr.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(b)
	}
	return nil
}

// provisionAssertion sets up the signer when assertion is on. The
// assertion header becomes an identity header, so a client's copy is
// always stripped.
func (h *Handler) provisionAssertion(ctx caddy.Context) error {
	if !h.Assertion {
		if h.AssertionHeader != "" || h.AssertionKey != "" {
			return fmt.Errorf("wechat_auth: assertion_header or assertion_key is set but assertion is not: add `assertion` to sign identity assertions")
		}
		return nil
	}
	if h.AssertionHeader == "" {
		h.AssertionHeader = assertion.DefaultHeader
	}
	var err error
	h.assertion, err = assertionSigner(ctx, "wechat_auth", h.Sandbox, h.AssertionHeader, h.AssertionKey,
		h.HeaderOpenID, h.HeaderUnionID, h.HeaderAppID, idheader.Source, "Authorization")
	if err != nil {
		return err
	}
	h.strip.Add(h.assertion.Header())
	return nil
}

// assertionSigner returns a signer that puts its assertion in header ("" is
// assertion.DefaultHeader), which may not be one of taken: with the key of
// keyPEM (placeholders resolved) when given, else the one kept in Caddy's
// storage (generated once, the sandbox's apart), so that wechat_auth's one
// jwks.json verifies the assertions of every handler that signs them.
func assertionSigner(ctx caddy.Context, module string, sandbox bool, header, keyPEM string, taken ...string) (*assertion.Signer, error) {
	name := http.CanonicalHeaderKey(header)
	if header == "" {
		name = assertion.DefaultHeader
	}
	if !httpguts.ValidHeaderFieldName(name) {
		return nil, fmt.Errorf("%s: assertion header %q is not a valid header name", module, header)
	}
	for _, t := range taken {
		if strings.EqualFold(name, t) {
			return nil, fmt.Errorf("%s: assertion header %q is already used for something else", module, header)
		}
	}
	var key *ecdsa.PrivateKey
	var err error
	if keyPEM != "" {
		key, err = assertion.ParseKey([]byte(caddy.NewReplacer().ReplaceKnown(keyPEM, "")))
	} else {
		stored := assertion.KeyName
		if sandbox {
			stored = assertion.KeyNameSandbox
		}
		key, err = assertion.StoredKey(ctx, ctx.Storage(), stored)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: assertion key: %w", module, err)
	}
	s, err := assertion.NewSigner(key, name)
	if err != nil {
		return nil, fmt.Errorf("%s: assertion key: %w", module, err)
	}
	return s, nil
}
