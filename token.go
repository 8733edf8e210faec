package wechatauth

import (
	"errors"
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

// identity is a verified caller.
type identity struct {
	OpenID  string
	UnionID string
	AppID   string
	SID     string
	Expires time.Time
}

// tokenCodec issues and verifies tokens: HS256 only, issuer, audience and
// expiry checked.
type tokenCodec struct {
	key    []byte
	issuer string
	ttl    time.Duration
	apps   map[string]string // token audiences accepted: the configured appids
	parser *jwt.Parser
}

func newTokenCodec(key []byte, issuer string, ttl time.Duration, apps map[string]string) *tokenCodec {
	return &tokenCodec{
		key:    key,
		issuer: issuer,
		ttl:    ttl,
		apps:   apps,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithIssuer(issuer),
			jwt.WithExpirationRequired(),
		),
	}
}

// issue signs a token for the session, valid for the token TTL from now.
func (tc *tokenCodec) issue(s *Session, now time.Time) (string, time.Time, error) {
	exp := now.Add(tc.ttl)
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    tc.issuer,
			Subject:   s.OpenID,
			Audience:  jwt.ClaimStrings{s.AppID},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
		SID:     s.SID,
		UnionID: s.UnionID,
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(tc.key)
	return tok, exp, err
}

var errBadToken = errors.New("invalid token")

// verify checks a token's signature, algorithm, issuer, expiry and audience.
// It touches no network.
func (tc *tokenCodec) verify(raw string) (*identity, error) {
	var c claims
	if _, err := tc.parser.ParseWithClaims(raw, &c, tc.keyFunc); err != nil {
		return nil, errBadToken
	}
	if len(c.Audience) != 1 || c.Subject == "" || c.SID == "" {
		return nil, errBadToken
	}
	if _, ok := tc.apps[c.Audience[0]]; !ok {
		return nil, errBadToken
	}
	return &identity{
		OpenID:  c.Subject,
		UnionID: c.UnionID,
		AppID:   c.Audience[0],
		SID:     c.SID,
		Expires: c.ExpiresAt.Time,
	}, nil
}

func (tc *tokenCodec) keyFunc(*jwt.Token) (any, error) { return tc.key, nil }
