package redisstore

import (
	"context"
	"fmt"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// redisLogger sends go-redis's own messages (a failed dial during an
// outage, for one) to Caddy's log at WARN, where the operator's log
// configuration applies, instead of to stderr. go-redis has one logger for
// the whole process, so it is set once, and it names no module: other
// go-redis users in the same Caddy write there too.
type redisLogger struct {
	log func() *zap.Logger // the current default logger: it changes on reload
}

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log().Named("go-redis").Warn(fmt.Sprintf(format, v...))
}

var routeRedisLogOnce sync.Once

// RouteLog points go-redis's logger at Caddy's log.
func RouteLog() {
	routeRedisLogOnce.Do(func() { redis.SetLogger(redisLogger{log: caddy.Log}) })
}
