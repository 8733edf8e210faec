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

// UserKey is the key a user is known by in the users' cut-offs, records
// and per-user session indexes: one user of one app.
func UserKey(appid, openid string) string { return appid + "\x00" + openid }
