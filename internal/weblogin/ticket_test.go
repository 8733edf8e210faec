package weblogin

import (
	"strings"
	"testing"
)

func TestNewTicketIsRandomAndURLSafe(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		tk := NewTicket()
		if !ValidTicket(tk) || strings.ContainsAny(tk, "+/=%?&#") {
			t.Fatalf("ticket %q", tk)
		}
		if seen[tk] {
			t.Fatal("ticket made twice")
		}
		seen[tk] = true
	}
}

func TestValidTicketRefuses(t *testing.T) {
	tk := NewTicket()
	for _, bad := range []string{"", tk[:42], tk + "A", tk[:42] + "+", tk[:42] + "=", tk[:42] + "\n", strings.Repeat("é", 21) + "a"} {
		if ValidTicket(bad) {
			t.Errorf("ValidTicket(%q)", bad)
		}
	}
}
