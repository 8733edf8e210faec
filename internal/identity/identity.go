// Package identity is a verified caller: who a token says the request is
// from, and the key the users' cut-offs and per-user indexes know that user
// by. It knows no HTTP; the headers an identity becomes are idheader's.
package identity

import (
	"sync/atomic"
	"time"
)

// Identity is a verified caller. An identity from the verified token cache
// is shared by every request that carries the same token: it is read-only.
type Identity struct {
	OpenID  string
	UnionID string
	AppID   string
	SID     string
	Expires time.Time
	Issued  time.Time // iat: a user's cut-off refuses tokens issued before it

	// Key is UserKey(AppID, OpenID), the identity's key in the users'
	// cut-offs, made once per verified token so the lookup on every
	// request does not allocate.
	Key string

	// Repl holds OpenID, UnionID and AppID as interface values, made once
	// per verified token: Caddy's replacer takes values of type any, and
	// boxing the strings on every request would allocate.
	Repl *[3]any

	// Lookup is Placeholder as a function value, made once per verified
	// token, so handing it to a request's replacer does not allocate.
	Lookup func(key string) (any, bool)

	// Assertion is the signed identity assertion made for this token, once
	// (see the assertion signer).
	Assertion atomic.Pointer[Signed]

	// Ring is the token codec's key ring when the token was verified. The
	// verified token cache serves the entry only while that ring is still
	// the one in force, so a token whose key left the ring stops verifying
	// at the next request. It is compared by pointer only.
	Ring any
}

// Signed is an assertion made for one verified token, kept with its
// identity; By is the signer that made it, compared by pointer.
type Signed struct {
	By  any
	JWT string
}

// ReplValues returns OpenID, UnionID and AppID as the replacer's values.
func (id *Identity) ReplValues() *[3]any {
	if id.Repl != nil {
		return id.Repl
	}
	return &[3]any{id.OpenID, id.UnionID, id.AppID}
}

// The placeholders an identity answers, as Caddy's authentication
// handlers name them.
const (
	PlaceholderID      = "http.auth.user.id"
	PlaceholderUnionID = "http.auth.user.unionid"
	PlaceholderAppID   = "http.auth.user.appid"
)

// Placeholder answers the identity's placeholders: {http.auth.user.id}
// (the openid), {http.auth.user.unionid} and {http.auth.user.appid}.
func (id *Identity) Placeholder(key string) (any, bool) {
	if len(key) < len(PlaceholderID) || key[:15] != "http.auth.user." {
		return nil, false
	}
	v := id.ReplValues()
	switch key {
	case PlaceholderID:
		return v[0], true
	case PlaceholderUnionID:
		return v[1], true
	case PlaceholderAppID:
		return v[2], true
	}
	return nil, false
}

// Placeholders returns Placeholder as a function value for a replacer:
// the one made once per verified token when there is one.
func (id *Identity) Placeholders() func(key string) (any, bool) {
	if id.Lookup != nil {
		return id.Lookup
	}
	return id.Placeholder
}

// UserKey is the key a user is known by in the users' cut-offs, records
// and per-user session indexes: one user of one app.
func UserKey(appid, openid string) string { return appid + "\x00" + openid }
