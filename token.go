package wechatauth

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token issuers. A sandbox token names its own issuer, so a production
// config refuses it even when both share a signing key.
const (
	issuerProduction = "wechat_auth"
	issuerSandbox    = "wechat_auth-sandbox"
)

// minSigningKey is the shortest HS256 key accepted, in bytes.
const minSigningKey = 32

// claims are the JWT claims of a wechat_auth token. The token never holds
// the session_key.
type claims struct {
	jwt.RegisteredClaims
	SID     string `json:"sid"`
	UnionID string `json:"unionid,omitempty"`
}

// identity is a verified caller. An identity from the verified token cache
// is shared by every request that carries the same token: it is read-only.
type identity struct {
	OpenID  string
	UnionID string
	AppID   string
	SID     string
	Expires time.Time
	Issued  time.Time // iat: a user's cut-off refuses tokens issued before it

	// userKey is the identity's key in the users' cut-offs, made once per
	// verified token so the lookup on every request does not allocate.
	userKey string

	// repl holds OpenID, UnionID and AppID as interface values, made once
	// per verified token: Caddy's replacer takes values of type any, and
	// boxing the strings on every request would allocate.
	repl *[3]any

	// assertion is the signed identity assertion made for this token, once
	// (see assertionSigner.of).
	assertion atomic.Pointer[signedAssertion]
}

// replValues returns OpenID, UnionID and AppID as the replacer's values.
func (id *identity) replValues() *[3]any {
	if id.repl != nil {
		return id.repl
	}
	return &[3]any{id.OpenID, id.UnionID, id.AppID}
}

// tokenCodec issues and verifies tokens: HS256 only, issuer, audience and
// expiry checked.
type tokenCodec struct {
	// ring holds the keys: the first signs, all verify. It is replaced
	// whole when generated keys rotate.
	ring atomic.Pointer[keyRing]
	// reload, when set, reads the generated keys again for a kid the ring
	// does not know (another instance may have rotated); it returns the
	// ring in force, or nil.
	reload func() *keyRing
	issuer string
	ttl    time.Duration
	apps   map[string]struct{} // token audiences accepted: the configured appids
	parser *jwt.Parser

	// verified caches what verify accepted. It belongs to this codec alone:
	// another codec may differ in key, issuer or audiences, and must
	// verify a token itself. apps is never changed after the codec is made
	// (Provision makes a new codec for every config), so an audience check
	// done once holds for the entry's life.
	verified *verifyCache
}

// newTokenCodec makes a codec that accepts the appids that are apps' keys
// as audiences. Only the keys are kept: the codec holds no app secret.
func newTokenCodec(key []byte, issuer string, ttl time.Duration, apps map[string]string) *tokenCodec {
	audiences := make(map[string]struct{}, len(apps))
	for appid := range apps {
		audiences[appid] = struct{}{}
	}
	tc := &tokenCodec{
		issuer: issuer,
		ttl:    ttl,
		apps:   audiences,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithIssuer(issuer),
			jwt.WithExpirationRequired(),
			// One spelling per token: without it the unused low bits of the
			// signature's last base64 character could vary.
			jwt.WithStrictDecoding(),
		),
		verified: newVerifyCache(verifyCacheGeneration),
	}
	tc.ring.Store(newKeyRing(key))
	return tc
}

// issue signs a token for the session, valid for the token TTL from now.
// A token has one audience, the session's appid, written as a plain string
// (RFC 7519 §4.1.3's form for a single audience); verify accepts the array
// form too.
func (tc *tokenCodec) issue(s *Session, now time.Time) (string, time.Time, error) {
	exp := now.Add(tc.ttl)
	c := jwt.MapClaims{
		"iss": tc.issuer,
		"sub": s.OpenID,
		"aud": s.AppID,
		"sid": s.SID,
		"iat": jwt.NewNumericDate(now),
		"exp": jwt.NewNumericDate(exp),
	}
	if s.UnionID != "" {
		c["unionid"] = s.UnionID
	}
	signer := tc.ring.Load().signer()
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	t.Header["kid"] = signer.kid
	tok, err := t.SignedString(signer.secret)
	return tok, exp, err
}

var errBadToken = errors.New("invalid token")

// verify checks a token's signature, algorithm, issuer, expiry and audience.
// It touches no network.
func (tc *tokenCodec) verify(raw string) (*identity, error) {
	var c claims
	if _, err := tc.parser.ParseWithClaims(raw, &c, tc.verificationKey); err != nil {
		return nil, errBadToken
	}
	if len(c.Audience) != 1 || c.Subject == "" || c.SID == "" {
		return nil, errBadToken
	}
	if _, ok := tc.apps[c.Audience[0]]; !ok {
		return nil, errBadToken
	}
	id := &identity{
		OpenID:  c.Subject,
		UnionID: c.UnionID,
		AppID:   c.Audience[0],
		SID:     c.SID,
		Expires: c.ExpiresAt.Time,
	}
	if c.IssuedAt != nil {
		id.Issued = c.IssuedAt.Time
	}
	id.userKey = userKey(id.AppID, id.OpenID)
	id.repl = &[3]any{id.OpenID, id.UnionID, id.AppID}
	return id, nil
}

// verifyCached is verify for the hot path: a token verified before and not
// expired at now is answered from the cache without parsing it again. Only
// a token that verify accepted, under its exact string, enters the cache.
// Revocation is not checked here; the caller checks it on every request.
func (tc *tokenCodec) verifyCached(raw string, now time.Time) (*identity, error) {
	if id, ok := tc.verified.get(raw, now); ok {
		return id, nil
	}
	id, err := tc.verify(raw)
	if err != nil {
		return nil, err
	}
	// verify checked exp against its own clock; the cache must not serve
	// a token that was already expired at now either.
	if !now.Before(id.Expires) {
		return nil, errBadToken
	}
	tc.verified.put(raw, id)
	return id, nil
}
