package platform

import "context"

// Platform is what every mini-program platform offers the login route:
// exchanging a login code for the user's ids and session key. It is
// deliberately one method; what only some platforms offer is a separate
// interface (Phoner), found by type assertion, so that a new platform (QQ,
// Douyin) implements what it has and the routes answer for what it lacks.
//
// Errors keep the platform's own kinds: the WeChat implementation returns
// the wechat package's errors as they are, and the routes map them to
// client answers.
type Platform interface {
	Login(ctx context.Context, appid, code string) (Login, error)
}

// Login is the outcome of a login code: who the user is and the key their
// open data is encrypted with.
type Login struct {
	OpenID     string
	UnionID    string // "" when the platform gave none
	SessionKey string
}

// Phoner is a Platform that exchanges a phone-button code for the user's
// phone number.
type Phoner interface {
	PhoneNumber(ctx context.Context, appid, code, openid string) (Phone, error)
}

// Phone is a user's phone number, as the phone route answers it.
type Phone struct {
	PhoneNumber     string `json:"phoneNumber"`
	PurePhoneNumber string `json:"purePhoneNumber"`
	CountryCode     string `json:"countryCode"`
}

// WebAuthorizer is a Platform whose users can also log in on the web: the
// code of a browser authorization (WeChat's Official Account page or
// website QR login) exchanged for who the user is.
type WebAuthorizer interface {
	WebLogin(ctx context.Context, appid, code string) (WebLogin, error)
}

// WebLogin is the outcome of a web authorization code. The platform's
// access token for the user is not part of it: nothing here keeps it.
type WebLogin struct {
	OpenID  string
	UnionID string // "" when the app is bound to no Open Platform account
	// Snapshot: a preview of the page whose openid is a virtual one; no
	// session may be made for it.
	Snapshot bool
}
