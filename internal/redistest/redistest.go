// Package redistest runs a real redis-server for tests, on a free loopback
// port, and stops it when the test ends.
package redistest

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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

	logfile string        // redis-server's log, for errors
	exited  chan struct{} // closed when cmd has ended

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
	return start(t, func(port int) *Server {
		return plain(port, filepath.Join(dir, "redis.log"), append([]string{bin,
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir,
			"--logfile", filepath.Join(dir, "redis.log"),
			"--repl-diskless-sync-delay", "0", // a replica syncs at once
		}, extra...))
	})
}

// plain is a Server speaking plain RESP on port, run with args, logging to
// logfile.
func plain(port int, logfile string, args []string) *Server {
	return &Server{port: port, args: args, logfile: logfile,
		URL:  fmt.Sprintf("redis://127.0.0.1:%d", port),
		Addr: fmt.Sprintf("127.0.0.1:%d", port)}
}

// startAttempts is how many free ports start tries. A port FreePort found
// free can be taken before redis-server binds it (by another test's
// connection, say); redis-server then exits, and start moves on.
const startAttempts = 3

// freePort is FreePort; tests of this package replace it.
var freePort = FreePort

// start runs the Server build makes for a free port until the test ends,
// on another port when redis-server exits at start.
func start(t testing.TB, build func(port int) *Server) *Server {
	t.Helper()
	for attempt := 1; ; attempt++ {
		s := build(freePort(t))
		s.t = t
		err := s.launch()
		if err == nil {
			t.Cleanup(s.Stop)
			return s
		}
		if !errors.Is(err, errExited) || attempt == startAttempts {
			t.Fatal(err)
		}
		t.Logf("%v\ntrying another port", err)
	}
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

// FreePort returns a loopback TCP port nobody listens on now and that it
// never returned before in this process. The kernel may offer a port again
// once it is closed, and two servers given the same one would both bind it
// when they use SO_REUSEPORT (Caddy does) and split its requests.
func FreePort(t testing.TB) int {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !handedOut.ports[port] {
			handedOut.ports[port] = true
			return port
		}
	}
	t.Fatal("no loopback port that was not handed out before")
	return 0
}

// handedOut holds the ports FreePort returned.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: make(map[int]bool)}

// Start starts a stopped redis-server again on its port (empty, unless it
// was given persistence) and waits until it answers.
func (s *Server) Start() {
	s.t.Helper()
	if err := s.launch(); err != nil {
		s.t.Fatal(err)
	}
}

// errExited is launch's error when redis-server ends before it answers.
var errExited = errors.New("redis-server exited at start")

// launch starts redis-server, unless it runs, and waits until it answers
// PING. A redis-server that exits first (its port taken, say) is an error
// wrapping errExited, with the end of its log.
func (s *Server) launch() error {
	if s.cmd != nil {
		return nil
	}
	cmd := exec.Command(s.args[0], s.args[1:]...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	// Short timeouts, one dial a try: whatever holds a taken port may
	// accept and never answer, and the exit is seen only between tries.
	o := s.options()
	o.DialTimeout, o.ReadTimeout, o.DialerRetries = 250*time.Millisecond, 250*time.Millisecond, 1
	c := redis.NewClient(o)
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	// The port answers for this process, not for another server that took
	// it: INFO names the process.
	own := fmt.Sprintf("process_id:%d\r\n", cmd.Process.Pid)
	for {
		info, err := "", errors.New("the port does not accept yet")
		// A plain dial first: go-redis logs every dial it fails.
		if conn, derr := net.DialTimeout("tcp", s.Addr, 250*time.Millisecond); derr == nil {
			conn.Close()
			info, err = c.Info(context.Background(), "server").Result()
		}
		if err == nil && strings.Contains(info, own) {
			return nil
		}
		if err == nil { // another server answers on the port
			s.Stop()
			return fmt.Errorf("%w: port %d is another server's", errExited, s.port)
		}
		select {
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("%w on port %d: %s", errExited, s.port, s.logTail(5))
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("redis-server on port %d does not answer: %s", s.port, s.logTail(5))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logTail is the last n lines of redis-server's log, for an error.
func (s *Server) logTail(n int) string {
	log, err := os.ReadFile(s.logfile)
	if err != nil {
		return "no log: " + err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(log)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Stop kills redis-server (a frozen one too) and waits for it.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGCONT)
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Pause freezes redis-server (SIGSTOP): its connections stay open and
// nothing answers. Resume thaws it.
func (s *Server) Pause()  { s.cmd.Process.Signal(syscall.SIGSTOP) }
func (s *Server) Resume() { s.cmd.Process.Signal(syscall.SIGCONT) }

// Client is a plain client (over TLS for a TLS server), for looking at
// what is in Redis.
func (s *Server) Client() *redis.Client {
	return redis.NewClient(s.options())
}

// options are Client's: no retries, over TLS for a TLS server.
func (s *Server) options() *redis.Options {
	return &redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: time.Second, TLSConfig: s.tls}
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
