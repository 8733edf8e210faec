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
// to give the pooled object, named as l is. Every logger it follows later
// must be of the same module as l: Caddy picks a module's log outputs by
// its name, and filters each line by the logger's.
func newFollowingLogger(l *zap.Logger) (*followingLogger, *zap.Logger) {
	f := new(followingLogger)
	f.follow(l)
	return f, zap.New(followCore{f: f}).Named(l.Name())
}

// follow sends the lines from now on where l sends its own. Its undo hands
// them back to where they went before, unless another config has taken
// them since: for a config that started and is stopped while Caddy keeps
// running, which is one rolled back (another app failed to start) or
// replaced (its successor took them already).
func (f *followingLogger) follow(l *zap.Logger) (undo func()) {
	c := l.Core()
	mine := &c
	prev := f.target.Swap(mine)
	return func() {
		if prev != nil {
			f.target.CompareAndSwap(mine, prev)
		}
	}
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
