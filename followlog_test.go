package wechatauth

import (
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// A pooled object's lines go where the config that holds it sends its
// own, with the logger's name and fields, and at that config's level.
func TestFollowingLoggerMovesWithTheConfig(t *testing.T) {
	first, firstLogs := observer.New(zapcore.InfoLevel)
	second, secondLogs := observer.New(zapcore.WarnLevel)
	f, log := newFollowingLogger(zap.New(first).Named("http.handlers.wechat_push"))
	log = log.With(zap.String("kind", "push"))

	log.Info("one")
	f.hold("second config", zap.New(second))
	log.Info("two: below the second config's level")
	log.Warn("three")

	if n := firstLogs.Len(); n != 1 {
		t.Fatalf("the first config got %d lines, want 1", n)
	}
	got := secondLogs.All()
	if len(got) != 1 || got[0].Message != "three" {
		t.Fatalf("the second config got %v, want only the warning", got)
	}
	for _, e := range []observer.LoggedEntry{firstLogs.All()[0], got[0]} {
		if e.LoggerName != "http.handlers.wechat_push" || e.ContextMap()["kind"] != "push" {
			t.Errorf("line %q: logger %q, fields %v", e.Message, e.LoggerName, e.ContextMap())
		}
	}
}

// The lines go to the newest config that holds the object and runs: not
// to one rolled back, nor to one replaced; a config with two handlers on
// one object holds it once; with none left (an unload, Caddy exiting),
// they go where the last one's went.
func TestFollowingLoggerFollowsTheNewestRunningHolder(t *testing.T) {
	cores := map[string]*observer.ObservedLogs{}
	logger := func(name string) *zap.Logger {
		c, logs := observer.New(zapcore.InfoLevel)
		cores[name] = logs
		return zap.New(c)
	}
	f, log := newFollowingLogger(logger("maker"))
	want := func(step, config string) {
		t.Helper()
		before := cores[config].Len()
		log.Info(step)
		if cores[config].Len() != before+1 {
			t.Fatalf("%s: the line did not go to %s", step, config)
		}
	}
	x, y, z := logger("x"), logger("y"), logger("z")
	f.hold("X", x)
	want("X started", "x")
	f.hold("Y", y)
	f.hold("Y", y) // a second handler of Y on the same object
	f.release("X")
	want("reloaded to Y", "y")
	f.hold("Z", z)
	want("Z started", "z")
	f.release("Z")
	want("Z rolled back", "y")
	f.release("Y")
	want("Y unloaded, nothing after it", "y")
}

// Lines logged while configs take and give back the object (run with
// -race): every line goes to one of the configs, none is lost.
func TestFollowingLoggerUnderConcurrentReloads(t *testing.T) {
	a, aLogs := observer.New(zapcore.InfoLevel)
	b, bLogs := observer.New(zapcore.InfoLevel)
	f, log := newFollowingLogger(zap.New(a))
	done := make(chan struct{})
	const lines = 4 * 500
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 500 {
				log.Info("line")
			}
		}()
	}
	// The loggers read the first target before any config holds it.
	time.Sleep(20 * time.Millisecond)
	for i := range 200 {
		owner := i % 3
		f.hold(owner, zap.New(b))
		f.release(owner)
	}
	for range 4 {
		<-done
	}
	if n := aLogs.Len() + bLogs.Len(); n != lines {
		t.Fatalf("%d of %d lines arrived", n, lines)
	}
}
