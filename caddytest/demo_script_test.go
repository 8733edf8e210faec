package caddytest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDemoRefusesToStartBesideARunningOne: `./xcaddy.sh run` stops with a
// message, building and starting nothing, when something already answers
// on the demo's address. Caddy opens its ports with SO_REUSEPORT, so a
// second demo would otherwise start beside an old one (perhaps built from
// older code) and split the requests with it.
func TestDemoRefusesToStartBesideARunningOne(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:8080")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the demo's port is taken: %v", err)
		}
		t.Skipf("the demo's port is taken (is the demo running?): %v", err)
	}
	old := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	})}
	go old.Serve(ln)
	t.Cleanup(func() { old.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "../xcaddy.sh", "run")
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if ctx.Err() != nil || !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("xcaddy.sh run beside a running demo: %v, want exit status 1 at once; output:\n%s", err, out)
	}
	if !strings.Contains(string(out), "already answers on http://localhost:8080") {
		t.Errorf("the message does not say the demo's address is taken:\n%s", out)
	}
	if strings.Contains(string(out), "building") {
		t.Errorf("it built Caddy before refusing:\n%s", out)
	}
}
