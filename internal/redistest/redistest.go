// Package redistest runs a real redis-server for tests, on a free loopback
// port, and stops it when the test ends.
package redistest

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RequireEnv, set to 1, turns a missing redis-server from a skip into a
// failure; CI sets it so the Redis tests always run there.
const RequireEnv = "WECHAT_AUTH_REQUIRE_REDIS"

// Server is a redis-server started by a test.
type Server struct {
	t    testing.TB
	port int
	args []string
	cmd  *exec.Cmd
	tls  *tls.Config // set for a server that speaks only TLS

	// URL is the server's redis:// URL, Addr its host:port.
	URL, Addr string
}

// Start starts redis-server without persistence (extra arguments are
// appended). Without redis-server the test is skipped, unless RequireEnv is
// 1, where that is a failure.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	bin := binary(t, "redis-server")
	dir := t.TempDir()
	port := FreePort(t)
	return start(t, port, append([]string{bin,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir,
		"--logfile", filepath.Join(dir, "redis.log"),
		"--repl-diskless-sync-delay", "0", // a replica syncs at once
	}, extra...))
}

// start runs args (a redis-server listening on port) until the test ends.
func start(t testing.TB, port int, args []string) *Server {
	t.Helper()
	s := &Server{t: t, port: port, args: args}
	s.URL = fmt.Sprintf("redis://127.0.0.1:%d", s.port)
	s.Addr = fmt.Sprintf("127.0.0.1:%d", s.port)
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// binary returns the path of redis-server, or skips the test (fails it
// when RequireEnv is 1) when it is not installed.
func binary(t testing.TB, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatal(name + " is not installed, and " + RequireEnv + "=1 requires the Redis tests: apt-get install redis-server")
		}
		t.Skip(name + " is not installed: apt-get install redis-server to run the Redis tests")
	}
	return bin
}

// FreePort returns a loopback TCP port nobody listens on now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start starts a stopped redis-server again on its port (empty, unless it
// was given persistence) and waits until it answers.
func (s *Server) Start() {
	s.t.Helper()
	if s.cmd != nil {
		return
	}
	s.cmd = exec.Command(s.args[0], s.args[1:]...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	c := s.Client()
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on port %d does not answer", s.port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills redis-server (a frozen one too) and waits for it.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGCONT)
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// Pause freezes redis-server (SIGSTOP): its connections stay open and
// nothing answers. Resume thaws it.
func (s *Server) Pause()  { s.cmd.Process.Signal(syscall.SIGSTOP) }
func (s *Server) Resume() { s.cmd.Process.Signal(syscall.SIGCONT) }

// Client is a plain client (over TLS for a TLS server), for looking at
// what is in Redis.
func (s *Server) Client() *redis.Client {
	if s.tls != nil {
		return s.tlsClient()
	}
	return redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: time.Second})
}

// CommandCount is the number of commands Redis has run (INFO
// commandstats), less the INFO calls themselves, as seen through c.
func CommandCount(t testing.TB, c *redis.Client) int {
	t.Helper()
	total := 0
	for _, n := range CommandStats(t, c) {
		total += n
	}
	return total
}

// CommandStats is how often Redis has run each command (INFO
// commandstats), less the INFO calls themselves, as seen through c.
func CommandStats(t testing.TB, c *redis.Client) map[string]int {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	stats := make(map[string]int)
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok || name == "cmdstat_info" {
			continue
		}
		n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
		stats[strings.TrimPrefix(name, "cmdstat_")] = n
	}
	return stats
}

// Dump returns every key of Redis with its value, as text and as DUMP
// serializes it.
func Dump(t testing.TB, c *redis.Client) []byte {
	t.Helper()
	ctx := context.Background()
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var all bytes.Buffer
	for _, k := range keys {
		all.WriteString(k + "\n")
		switch typ := c.Type(ctx, k).Val(); typ {
		case "string":
			all.WriteString(c.Get(ctx, k).Val())
		case "zset":
			for _, z := range c.ZRangeWithScores(ctx, k, 0, -1).Val() {
				fmt.Fprintf(&all, "%v %v\n", z.Member, z.Score)
			}
		case "hash":
			for f, v := range c.HGetAll(ctx, k).Val() {
				fmt.Fprintf(&all, "%s %s\n", f, v)
			}
		default:
			t.Errorf("unexpected %s at %s", typ, k)
		}
		all.WriteString("\n" + c.Dump(ctx, k).Val() + "\n")
	}
	return all.Bytes()
}
