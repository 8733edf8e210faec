package caddytest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/redistest"
)

// requireNginxEnv, set to 1, turns a missing nginx from a skip into a
// failure; CI sets it so the front-proxy tests always run there.
const requireNginxEnv = "WECHAT_AUTH_REQUIRE_NGINX"

// startNginx runs Debian's nginx in the foreground with its own prefix (pid,
// logs and every temp path in a fresh directory), the http block holding
// server, which may use {{PORT}} for the port it listens on. It returns
// nginx's base URL; nginx stops when the test ends.
func startNginx(t *testing.T, server string) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
			if _, e := os.Stat(p); e == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		if os.Getenv(requireNginxEnv) == "1" {
			t.Fatal("nginx is not installed, and " + requireNginxEnv + "=1 requires the front-proxy tests: apt-get install nginx")
		}
		t.Skip("nginx is not installed: apt-get install nginx to run the nginx auth_request tests")
	}
	// nginx's workers drop root for nobody, who must reach the temp paths.
	dir, err := os.MkdirTemp("", "wechat-auth-nginx-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	port := redistest.FreePort(t)
	conf := fmt.Sprintf(`worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
	access_log %[1]s/access.log;
	client_body_temp_path %[1]s/client_body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
%[2]s
}
`, dir, strings.ReplaceAll(server, "{{PORT}}", fmt.Sprint(port)))
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", confPath, "-g", "daemon off;")
	out, _ := os.Create(filepath.Join(dir, "stderr.log"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGQUIT) // graceful shutdown
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		out.Close()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			b, _ := os.ReadFile(filepath.Join(dir, "stderr.log"))
			e, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited (%v):\n%s%s\nconfig:\n%s", err, b, e, conf)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return "http://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatal("nginx did not listen within 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
