package caddytest

// Helpers of the multi-instance tests (Redis, restarts, reloads), which run
// Caddy as subprocesses with their own admin ports, so they never collide
// with the in-process Caddy on :2999. Prefixed rds (a redis-server) and
// multi (a Caddy process).
//
// This file holds the package's TestMain: extend it rather than adding
// another.

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caddy-wechat/wechatauth/internal/redistest"
)

// multiBinDir holds the Caddy binary built for this test run; TestMain
// removes it.
var multiBinDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wechatauth-caddytest-storage-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	storageDir = dir
	code := m.Run()
	os.RemoveAll(storageDir)
	if multiBinDir != "" {
		os.RemoveAll(multiBinDir)
	}
	os.Exit(code)
}

var multiBuild struct {
	once sync.Once
	bin  string
	err  error
}

// multiCaddyBinary builds ./cmd/caddy once per test run (Go's build cache
// makes that a link) and returns its path.
func multiCaddyBinary(t *testing.T) string {
	t.Helper()
	multiBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "wechatauth-caddytest-")
		if err != nil {
			multiBuild.err = err
			return
		}
		multiBinDir = dir
		gobin, err := exec.LookPath("go")
		if err != nil {
			gobin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		}
		bin := filepath.Join(dir, "caddy")
		cmd := exec.Command(gobin, "build", "-o", bin, "./cmd/caddy")
		cmd.Dir = ".." // the module root: tests run in caddytest/
		if out, err := cmd.CombinedOutput(); err != nil {
			multiBuild.err = fmt.Errorf("go build ./cmd/caddy: %v\n%s", err, out)
			return
		}
		multiBuild.bin = bin
	})
	if multiBuild.err != nil {
		t.Fatal(multiBuild.err)
	}
	return multiBuild.bin
}

// rdsServer is a real redis-server for the test (internal/redistest).
type rdsServer = redistest.Server

func rdsStart(t testing.TB) *rdsServer { return redistest.Start(t) }

func rdsCommandCount(t testing.TB, c *redis.Client) int { return redistest.CommandCount(t, c) }

func rdsDump(t testing.TB, c *redis.Client) []byte { return redistest.Dump(t, c) }

func multiFreePort(t testing.TB) int { return redistest.FreePort(t) }

// multiCaddy is a Caddy process with its own admin and HTTP ports, started
// from the binary built by multiCaddyBinary. Its output goes to a log file
// shown when the test fails.
type multiCaddy struct {
	t     *testing.T
	name  string
	bin   string
	dir   string
	admin int
	port  int
	Base  string // http://127.0.0.1:<port>
	Admin string // http://127.0.0.1:<admin>

	cmd    *exec.Cmd
	exited chan struct{}
}

// multiNew prepares a Caddy process named name; site is the site block's
// body (directives inside `http://127.0.0.1:<port> { … }`) and global
// holds extra global options such as `storage file_system <dir>`.
func multiNew(t *testing.T, name, global, site string) *multiCaddy {
	t.Helper()
	m := &multiCaddy{t: t, name: name, bin: multiCaddyBinary(t), dir: t.TempDir(), admin: multiFreePort(t), port: multiFreePort(t)}
	m.Base = fmt.Sprintf("http://127.0.0.1:%d", m.port)
	m.Admin = fmt.Sprintf("http://127.0.0.1:%d", m.admin)
	if err := os.WriteFile(filepath.Join(m.dir, "Caddyfile"), []byte(m.Caddyfile(global, site)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Stop()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(m.dir, "caddy.log"))
			t.Logf("----- log of Caddy %s -----\n%s", m.name, log)
		}
	})
	return m
}

// Caddyfile is this instance's whole Caddyfile with global options global
// and a site block of body site.
func (m *multiCaddy) Caddyfile(global, site string) string {
	return fmt.Sprintf(`{
	admin 127.0.0.1:%d
	persist_config off
	grace_period 2s
	skip_install_trust
%s
}

http://127.0.0.1:%d {
	bind 127.0.0.1
%s
}
`, m.admin, global, m.port, site)
}

// Start runs Caddy and waits until its site answers.
func (m *multiCaddy) Start() {
	m.t.Helper()
	if err := m.start(); err != nil {
		m.t.Fatal(err)
	}
}

func (m *multiCaddy) start() error {
	logf, err := os.OpenFile(filepath.Join(m.dir, "caddy.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	m.cmd = exec.Command(m.bin, "run", "--config", filepath.Join(m.dir, "Caddyfile"), "--adapter", "caddyfile")
	m.cmd.Dir = m.dir
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	m.cmd.Env = append(os.Environ(), "HOME="+m.dir, "XDG_DATA_HOME="+m.dir+"/data", "XDG_CONFIG_HOME="+m.dir+"/config")
	if err := m.cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start Caddy %s: %v", m.name, err)
	}
	m.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		cmd.Wait()
		logf.Close()
		close(exited)
	}(m.cmd, m.exited)

	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-m.exited:
			log, _ := os.ReadFile(filepath.Join(m.dir, "caddy.log"))
			m.cmd = nil
			return fmt.Errorf("Caddy %s exited at start:\n%s", m.name, log)
		default:
		}
		if resp, err := client.Get(m.Base + "/"); err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("Caddy %s does not answer on %s", m.name, m.Base)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop shuts Caddy down gracefully (SIGTERM), killing it if it lingers.
func (m *multiCaddy) Stop() {
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(10 * time.Second):
		m.cmd.Process.Kill()
		<-m.exited
	}
	m.cmd = nil
}

// Restart stops and starts Caddy with the same config and ports.
func (m *multiCaddy) Restart() {
	m.t.Helper()
	m.Stop()
	m.Start()
}

// multiStartAll starts instances at the same time and waits for all.
func multiStartAll(t *testing.T, ms ...*multiCaddy) {
	t.Helper()
	errs := make([]error, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.start()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Load replaces the instance's config through its admin API, as
// `caddy reload` does.
func (m *multiCaddy) Load(t *testing.T, caddyfile string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, m.Admin+"/load", strings.NewReader(caddyfile))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/caddyfile")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Errorf("reload Caddy %s: %v", m.name, err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		t.Errorf("reload Caddy %s: %d %s", m.name, resp.StatusCode, b.String())
	}
}
