// Package token issues and verifies the HS256 tokens of wechat_auth, keeps
// the verified-token cache, and watches generated keys for rotation. It
// knows no HTTP and no store: a token's subject is given to it.
package token

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/identity"
	"github.com/caddy-wechat/wechatauth/internal/keyring"
	"github.com/caddy-wechat/wechatauth/wechat"
	"github.com/golang-jwt/jwt/v5"
)

// Token issuers. A sandbox token names its own issuer, so a production
// config refuses it even when both share a signing key.
const (
	IssuerProduction = "wechat_auth"
	IssuerSandbox    = "wechat_auth-sandbox"
)

// claims are the JWT claims of a wechat_auth token. The token never holds
// the session_key.
type claims struct {
	jwt.RegisteredClaims
	SID     string `json:"sid"`
	UnionID string `json:"unionid,omitempty"`
}

// Codec issues and verifies tokens: HS256 only, issuer, audience and
// expiry checked.
type Codec struct {
	// ring holds the keys: the first signs, all verify. It is replaced
	// whole when generated keys rotate.
	ring atomic.Pointer[keyring.Ring]
	// reload, when set, reads the generated keys again for a kid the ring
	// does not know (another instance may have rotated); it returns the
	// ring in force, or nil.
	reload func() *keyring.Ring
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
	// cookies caches the session cookies opened and verified, apart from
	// the tokens (see OpenCookieCached).
	cookies *verifyCache
}

// New makes a codec that accepts the appids that are apps' keys
// as audiences. Only the keys are kept: the codec holds no app secret.
func New(key []byte, issuer string, ttl time.Duration, apps map[string]string) *Codec {
	audiences := make(map[string]struct{}, len(apps))
	for appid := range apps {
		audiences[appid] = struct{}{}
	}
	tc := &Codec{
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
		cookies:  newVerifyCache(verifyCacheGeneration),
	}
	tc.ring.Store(keyring.New(key))
	return tc
}

// Subject is whom a token is issued for: a session of a user of an app.
type Subject struct {
	AppID, OpenID, UnionID, SID string
}

// Ring returns the key ring in force.
func (tc *Codec) Ring() *keyring.Ring { return tc.ring.Load() }

// SetRing puts ring in force.
func (tc *Codec) SetRing(ring *keyring.Ring) { tc.ring.Store(ring) }

// TTL is the lifetime of the tokens the codec issues.
func (tc *Codec) TTL() time.Duration { return tc.ttl }

// Issue signs a token for the session, valid for the token TTL from now.
// A token has one audience, the session's appid, written as a plain string
// (RFC 7519 §4.1.3's form for a single audience); verify accepts the array
// form too.
func (tc *Codec) Issue(s Subject, now time.Time) (string, time.Time, error) {
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
	signer := tc.ring.Load().Signer()
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	t.Header["kid"] = signer.Kid
	tok, err := t.SignedString(signer.Secret)
	if err == nil {
		issuedLives.note(signer.Kid, tc.ttl, exp)
	}
	return tok, exp, err
}

// tokenLeeway is the clock difference between instances tolerated when a
// token's iat and lifetime are checked.
const tokenLeeway = 5 * time.Second

// tokenLives records, for each signing kid, every token_ttl that tokens
// signed with it were issued under by this process, and the latest exp
// issued under each. A token is accepted only with a lifetime (exp - iat)
// no longer than the codec's own token_ttl or a token_ttl whose tokens may
// still be valid: a config reloaded with a shorter token_ttl keeps honouring
// the tokens it issued before, and nothing lives longer than any config
// ever allowed.
type tokenLives struct {
	mu sync.Mutex
	m  map[string]map[time.Duration]time.Time // kid → token_ttl → latest exp
}

var issuedLives = &tokenLives{m: make(map[string]map[time.Duration]time.Time)}

// note records that a token signed with kid under ttl expires at exp.
func (l *tokenLives) note(kid string, ttl time.Duration, exp time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	byTTL := l.m[kid]
	if byTTL == nil {
		byTTL = make(map[time.Duration]time.Time, 1)
		l.m[kid] = byTTL
	}
	if exp.After(byTTL[ttl]) {
		byTTL[ttl] = exp
	}
}

// longest returns the longest token_ttl under which this process signed
// with kid a token that has not expired at now; 0 when there is none.
// Records whose tokens have all expired are dropped.
func (l *tokenLives) longest(kid string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	byTTL := l.m[kid]
	var longest time.Duration
	for ttl, until := range byTTL {
		if now.After(until.Add(tokenLeeway)) {
			delete(byTTL, ttl)
			continue
		}
		longest = max(longest, ttl)
	}
	if byTTL != nil && len(byTTL) == 0 {
		delete(l.m, kid)
	}
	return longest
}

// maxLifetime is the longest lifetime (exp - iat) a token signed with kid
// may have: the codec's token_ttl, the longest token_ttl of the configs
// sharing generated keys (kept with the ring), or a longer one this process
// issued tokens under that may still be valid. A token without kid may have
// been signed by any key of the ring.
func (tc *Codec) maxLifetime(ring *keyring.Ring, kid string, hasKID bool, now time.Time) time.Duration {
	longest := max(tc.ttl, ring.MaxTTL)
	if hasKID {
		return max(longest, issuedLives.longest(kid, now))
	}
	for _, k := range ring.Keys {
		longest = max(longest, issuedLives.longest(k.Kid, now))
	}
	return longest
}

var ErrBadToken = errors.New("invalid token")

// Verify checks a token's signature, algorithm, issuer, expiry, audience
// and lifetime: it must carry iat, not in the future, and its exp may lie
// no further past iat than the longest token_ttl in force for its key (see
// maxLifetime). It touches no network.
func (tc *Codec) Verify(raw string) (*identity.Identity, error) {
	// The ring is read before the key is looked up: an entry cached under
	// it is dropped as soon as a newer ring is in force.
	ring := tc.ring.Load()
	var c claims
	t, err := tc.parser.ParseWithClaims(raw, &c, tc.verificationKey)
	if err != nil {
		return nil, ErrBadToken
	}
	if len(c.Audience) != 1 || c.Subject == "" || c.SID == "" || c.IssuedAt == nil {
		return nil, ErrBadToken
	}
	// The openid and unionid become request headers: a token whose claims
	// could not be one (a CR, a space, a byte past ASCII) is refused here,
	// as a 401, rather than failing later in the proxy as a 502. Logins
	// only ever issue ids that pass.
	if !wechat.ValidID(c.Subject) || c.UnionID != "" && !wechat.ValidID(c.UnionID) {
		return nil, ErrBadToken
	}
	now := time.Now()
	iat, exp := c.IssuedAt.Time, c.ExpiresAt.Time
	if iat.After(now.Add(tokenLeeway)) {
		return nil, ErrBadToken
	}
	kid, hasKID := t.Header["kid"].(string)
	if exp.Sub(iat) > tc.maxLifetime(ring, kid, hasKID, now)+tokenLeeway {
		return nil, ErrBadToken
	}
	if _, ok := tc.apps[c.Audience[0]]; !ok {
		return nil, ErrBadToken
	}
	id := &identity.Identity{
		OpenID:  c.Subject,
		UnionID: c.UnionID,
		AppID:   c.Audience[0],
		SID:     c.SID,
		Expires: exp,
		Issued:  iat,
		Ring:    ring,
	}
	id.Key = identity.UserKey(id.AppID, id.OpenID)
	id.Repl = &[3]any{id.OpenID, id.UnionID, id.AppID}
	id.Lookup = id.Placeholder
	return id, nil
}

// VerifyCached is verify for the hot path: a token verified before and not
// expired at now is answered from the cache without parsing it again. Only
// a token that verify accepted, under its exact string, enters the cache.
// An entry verified under a ring no longer in force is verified again, so
// a token whose key left the ring is refused. Revocation is not checked
// here; the caller checks it on every request.
func (tc *Codec) VerifyCached(raw string, now time.Time) (*identity.Identity, error) {
	if id, ok := tc.verified.get(raw, now); ok && id.Ring == tc.ring.Load() {
		return id, nil
	}
	id, err := tc.Verify(raw)
	if err != nil {
		return nil, err
	}
	// verify checked exp against its own clock; the cache must not serve
	// a token that was already expired at now either.
	if !now.Before(id.Expires) {
		return nil, ErrBadToken
	}
	tc.verified.put(raw, id)
	return id, nil
}

var errUnknownKID = errors.New("unknown kid")

// verificationKey returns what a token is checked against: the key its kid
// names, or every key for a token without kid (issued before key ids).
// An unknown kid is asked of reload (when the keys are generated and may
// have been rotated by another instance) before it is refused.
func (tc *Codec) verificationKey(t *jwt.Token) (any, error) {
	ring := tc.ring.Load()
	v, ok := t.Header["kid"]
	if !ok {
		return ring.Set, nil
	}
	kid, ok := v.(string)
	if !ok {
		return nil, errUnknownKID
	}
	if k, ok := ring.ByKID[kid]; ok {
		return k.Secret, nil
	}
	if tc.reload != nil {
		if ring := tc.reload(); ring != nil {
			if k, ok := ring.ByKID[kid]; ok {
				return k.Secret, nil
			}
		}
	}
	return nil, errUnknownKID
}
