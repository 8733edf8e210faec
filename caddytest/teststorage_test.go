package caddytest

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// TestPushQueuedInTestsStaysOutOfTheUsersStorage: the in-process Caddy
// keeps its storage in a directory of its own test run, never in the
// user's Caddy storage, where the demo (`./xcaddy.sh run`) or any Caddy
// started later would find a push the tests left queued and post it, for
// 24 h, to a loopback port the test upstream no longer holds.
func TestPushQueuedInTestsStaysOutOfTheUsersStorage(t *testing.T) {
	up := startPushUpstream(t)
	loadPushSite(t, "", pushHandler(pushPath, pushLines(up.URL, "")))
	p := safePush(false)
	marker := "queued by a test " + strconv.FormatInt(time.Now().UnixNano(), 10)
	up.Down()
	wantSuccess(t, sendPush(t, p, siteBase+pushPath, p.Text("oUSER0000000000000000000000s", marker)))
	found := queuedIn(t, filepath.Join(caddy.AppDataDir(), "wechat_auth", "outbox"), marker)
	up.Up()
	up.WaitFor(1, 30*time.Second) // delivered, so the test leaves nothing queued anywhere
	if found != "" {
		t.Fatalf("the tests' push was queued in the user's Caddy storage: %s", found)
	}
}

// TestConfigOfTheTestsIsNotAutosaved: a config the tests load is not
// written over the user's autosave.json, which `caddy run --resume` would
// otherwise start instead of the user's own.
func TestConfigOfTheTestsIsNotAutosaved(t *testing.T) {
	marker := "loaded by a test " + strconv.FormatInt(time.Now().UnixNano(), 10)
	loadCaddy(t, globalOptions("")+"\nhttp://localhost:9080 {\n\trespond \""+marker+"\"\n}\n")
	if saved, err := os.ReadFile(caddy.ConfigAutosavePath); err == nil && strings.Contains(string(saved), marker) {
		t.Fatalf("the tests' config was autosaved to %s", caddy.ConfigAutosavePath)
	}
}

// queuedIn returns the outbox file under dir whose event body holds
// marker, or "" when there is none.
func queuedIn(t *testing.T, dir, marker string) string {
	t.Helper()
	var found string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found != "" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		var rec struct {
			Body []byte `json:"body"`
		}
		if json.Unmarshal(data, &rec) == nil && strings.Contains(string(rec.Body), marker) {
			found = path
		}
		return nil
	})
	return found
}
