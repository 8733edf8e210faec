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

// kinds maps WeChat's documented errcodes to their kind.
var kinds = map[int]Kind{
	-1:    KindUnavailable,
	40029: KindInvalidCode,
	40163: KindInvalidCode,
	40226: KindBlocked,
	45011: KindRateLimited,
	40013: KindConfig,
	40125: KindConfig,
	41002: KindConfig,
	41004: KindConfig,
	40164: KindConfig,
	40002: KindConfig,
	40001: KindTokenInvalid,
	40014: KindTokenInvalid,
	42001: KindTokenInvalid,
}

// KindOfErrcode returns the kind of a WeChat errcode; 0 is KindNone.
func KindOfErrcode(code int) Kind {
	if code == 0 {
		return KindNone
	}
	if k, ok := kinds[code]; ok {
		return k
	}
	return KindOther
}

// Kind returns the kind of the errcode.
func (e *Error) Kind() Kind { return KindOfErrcode(e.Code) }
