package wechat

// Kind says what sort of failure a WeChat error is, so that callers map
// kinds to answers without knowing WeChat's errcodes.
type Kind int

// The kinds of failure. KindOther is an errcode WeChat has not documented
// for the calls this package knows.
const (
	KindNone         Kind = iota // no error
	KindInvalidCode              // a login or phone code is expired, used or garbage: ask the user again
	KindBlocked                  // WeChat blocked the user
	KindRateLimited              // a WeChat quota is reached: try later
	KindConfig                   // only the operator can fix it (appid, secret, IP whitelist)
	KindTokenInvalid             // the access token is invalid or expired
	KindUnavailable              // WeChat is busy or gave no usable answer
	KindOther                    // an errcode this package has no kind for
)

// kinds maps WeChat's documented errcodes to their kind; those of
// KindConfig are configFixes.
var kinds = map[int]Kind{
	-1:    KindUnavailable,
	40029: KindInvalidCode,
	40163: KindInvalidCode,
	40226: KindBlocked,
	45011: KindRateLimited,
	40001: KindTokenInvalid,
	40014: KindTokenInvalid,
	42001: KindTokenInvalid,
}

// configFixes are the errcodes of KindConfig, which only the operator can
// fix, with the fix to tell the operator.
var configFixes = map[int]string{
	40013: "WeChat says the appid is invalid: check app_id",
	40125: "WeChat says the app secret is invalid: check app_secret (reset it in the mini program admin console if needed)",
	41002: "WeChat says the appid is missing: check app_id",
	41004: "WeChat says the app secret is missing: check app_secret",
	40164: "WeChat refuses this server's IP address: add it to the IP whitelist in the mini program admin console",
	40002: "WeChat refused the grant type: report this as a bug in wechat_auth",
}

// ConfigFix returns what the operator must do about an errcode of
// KindConfig, and whether the errcode is one.
func ConfigFix(code int) (string, bool) {
	fix, ok := configFixes[code]
	return fix, ok
}

// KindOfErrcode returns the kind of a WeChat errcode; 0 is KindNone.
func KindOfErrcode(code int) Kind {
	if code == 0 {
		return KindNone
	}
	if _, ok := configFixes[code]; ok {
		return KindConfig
	}
	if k, ok := kinds[code]; ok {
		return k
	}
	return KindOther
}

// Kind returns the kind of the errcode.
func (e *Error) Kind() Kind { return KindOfErrcode(e.Code) }
