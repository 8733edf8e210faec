package wechatauth

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// unitSlip refuses a duration set above zero but under least: such a
// value is a slip of the unit, most often a JSON number, which Caddy
// counts in nanoseconds ("token_ttl": 7200 is 7.2µs, and every token
// would be expired when issued). Zero and negative values are left to
// the caller, for whom zero often means the default.
func unitSlip(name string, d caddy.Duration, least time.Duration) error {
	if d <= 0 || time.Duration(d) >= least {
		return nil
	}
	return fmt.Errorf("%s is %s, under %s, which cannot be meant (in JSON a bare number counts nanoseconds: write a string such as \"2h\" or \"90s\")", name, time.Duration(d), least)
}
