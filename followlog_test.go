package wechatauth

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// A pooled object's lines go where the config that took it last sends its
// own, with the logger's name and fields, and at that config's level.
func TestFollowingLoggerMovesWithTheConfig(t *testing.T) {
	first, firstLogs := observer.New(zapcore.InfoLevel)
	second, secondLogs := observer.New(zapcore.WarnLevel)
	f, log := newFollowingLogger(zap.New(first).Named("http.handlers.wechat_push"))
	log = log.With(zap.String("kind", "push"))

	log.Info("one")
	f.follow(zap.New(second))
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

// A config that took the lines and is rolled back hands them back; one
// replaced since by a newer config does not take them from it.
func TestFollowingLoggerUndo(t *testing.T) {
	first, firstLogs := observer.New(zapcore.InfoLevel)
	second, _ := observer.New(zapcore.InfoLevel)
	third, thirdLogs := observer.New(zapcore.InfoLevel)
	f, log := newFollowingLogger(zap.New(first))

	f.follow(zap.New(second))()
	log.Info("after the second config was rolled back")
	if firstLogs.Len() != 1 {
		t.Fatalf("the first config got %d lines after the rollback, want 1", firstLogs.Len())
	}
	undoSecond := f.follow(zap.New(second))
	f.follow(zap.New(third))
	undoSecond()
	log.Info("after the second config stopped, replaced by the third")
	if thirdLogs.Len() != 1 {
		t.Fatalf("the third config got %d lines, want 1", thirdLogs.Len())
	}
}
