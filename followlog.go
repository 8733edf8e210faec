package wechatauth

import (
	"slices"
	"sync/atomic"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// followingLogger is the logger of what a pool keeps across reloads (a
// session store, an outbox): its lines go where the config that took it
// last sends its own. A logger from ctx.Logger() writes through the
// writers of the config that made it, which a reload closes, so a pooled
// object's lines would go to a file the operator no longer reads.
type followingLogger struct {
	target atomic.Pointer[zapcore.Core]
}

// newFollowingLogger returns a follower of l's destination and the logger
// to give the pooled object, named as l is.
func newFollowingLogger(l *zap.Logger) (*followingLogger, *zap.Logger) {
	f := new(followingLogger)
	f.follow(l)
	return f, zap.New(followCore{f: f}).Named(l.Name())
}

// follow sends the lines from now on where l sends its own.
func (f *followingLogger) follow(l *zap.Logger) {
	c := l.Core()
	f.target.Store(&c)
}

// followCore is a zapcore.Core that writes through the follower's current
// target, with the fields its logger was given.
type followCore struct {
	f      *followingLogger
	fields []zapcore.Field
}

func (c followCore) current() zapcore.Core { return *c.f.target.Load() }

func (c followCore) Enabled(l zapcore.Level) bool { return c.current().Enabled(l) }

func (c followCore) With(fields []zapcore.Field) zapcore.Core {
	return followCore{f: c.f, fields: append(slices.Clip(c.fields), fields...)}
}

func (c followCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	core := c.current()
	if len(c.fields) > 0 {
		core = core.With(c.fields)
	}
	return core.Check(e, ce)
}

func (c followCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	return c.current().With(c.fields).Write(e, fields)
}

func (c followCore) Sync() error { return c.current().Sync() }
