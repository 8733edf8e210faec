package redistest

import (
	"context"
	"net"
	"strings"
	"testing"
)

// offerFirst makes the next start try port first, then free ports.
func offerFirst(t *testing.T, port int) {
	offered := false
	freePort = func(t testing.TB) int {
		if !offered {
			offered = true
			return port
		}
		return FreePort(t)
	}
	t.Cleanup(func() { freePort = FreePort })
}

// pid is the process id the server at s.Addr reports.
func pid(t *testing.T, s *Server) string {
	t.Helper()
	c := s.Client()
	defer c.Close()
	info, err := c.Info(context.Background(), "server").Result()
	if err != nil {
		t.Fatalf("INFO on %s: %v", s.Addr, err)
	}
	_, rest, _ := strings.Cut(info, "process_id:")
	id, _, _ := strings.Cut(rest, "\r\n")
	return id
}

// A port can be taken between FreePort and redis-server's bind; the
// server then exits at once, and Start must move to another port rather
// than wait for an answer that never comes. StartTLS builds its server
// its own way, and moves too.
func TestStartMovesOffAPortTakenBeforeItBinds(t *testing.T) {
	for name, start := range map[string]func(testing.TB) *Server{
		"plain": func(t testing.TB) *Server { return Start(t) },
		"TLS":   func(t testing.TB) *Server { return StartTLS(t).Server },
	} {
		t.Run(name, func(t *testing.T) {
			taken, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer taken.Close()
			port := taken.Addr().(*net.TCPAddr).Port
			offerFirst(t, port)
			s := start(t)
			if s.port == port {
				t.Fatalf("kept port %d, which a listener holds", port)
			}
			if err := s.Client().Ping(context.Background()).Err(); err != nil {
				t.Fatalf("PING on %s: %v", s.Addr, err)
			}
		})
	}
}

// When the port went to another redis-server, that one answers PING: Start
// must not take it for its own.
func TestStartDoesNotTakeAnotherServerForItsOwn(t *testing.T) {
	other := Start(t)
	offerFirst(t, other.port)
	s := Start(t)
	if s.Addr == other.Addr || pid(t, s) == pid(t, other) {
		t.Fatalf("Start returned the server already on %s", other.Addr)
	}
}

// Two servers of one test given the same port would both bind it (Caddy
// opens its ports with SO_REUSEPORT) and split its requests between them:
// FreePort never returns a port twice in a process, though the kernel may
// offer one again once it is closed.
func TestFreePortNeverRepeats(t *testing.T) {
	seen := make(map[int]bool)
	for range 2000 {
		p := FreePort(t)
		if seen[p] {
			t.Fatalf("FreePort returned %d twice", p)
		}
		seen[p] = true
	}
}
