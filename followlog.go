package wechatauth

import (
	"slices"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// followingLogger is the logger of what a pool keeps across reloads (a
// session store, an outbox): its lines go where the newest running config
// that holds it sends its own. A logger from ctx.Logger() writes through
// the writers of the config that made it, so after a reload that moved
// the logs, a pooled object's lines would go on to the replaced config's
// file, which the operator no longer reads.
//
// The configs that hold it are registered at their wechat app's Start and
// removed at its Stop, whatever the reason: replaced by a reload, rolled
// back because another app failed to start, unloaded, or Caddy exiting.
// With none left (an unload, the exit), the lines go where the last one
// removed sent them.
type followingLogger struct {
	target atomic.Pointer[zapcore.Core]

	mu      sync.Mutex
	holders []holder     // running configs that hold it, oldest first
	last    zapcore.Core // where lines go with no holder
}

// holder is a config holding a pooled object (owner, its wechat app) and
// the core of its logger for the object.
type holder struct {
	owner any
	core  zapcore.Core
}

// newFollowingLogger returns a follower, sending lines where l does until
// a config holds it, and the logger to give the pooled object, named as l
// is. Every logger held later must be of the same module as l: Caddy picks
// a module's log outputs by its name, and filters each line by the
// logger's.
func newFollowingLogger(l *zap.Logger) (*followingLogger, *zap.Logger) {
	f := &followingLogger{last: l.Core()}
	f.retarget() // a copy: release writes last under mu, log calls read the target without it
	return f, zap.New(followCore{f: f}).Named(l.Name())
}

// hold registers owner's config, whose logger for the object is l, as the
// newest holder: lines go where l sends them from now on.
func (f *followingLogger) hold(owner any, l *zap.Logger) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.holders = slices.DeleteFunc(f.holders, func(h holder) bool { return h.owner == owner })
	f.holders = append(f.holders, holder{owner, l.Core()})
	f.retarget()
}

// release removes owner's config: lines go to the newest holder left, or,
// with none, where owner's went.
func (f *followingLogger) release(owner any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, h := range f.holders {
		if h.owner == owner {
			f.last = h.core
			f.holders = slices.Delete(f.holders, i, i+1)
			break
		}
	}
	f.retarget()
}

func (f *followingLogger) retarget() {
	c := f.last
	if n := len(f.holders); n > 0 {
		c = f.holders[n-1].core
	}
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
