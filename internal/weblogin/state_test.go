package weblogin

import (
	"net/http"
	"strings"
	"testing"
)

func TestNewStateIsRandomAlnum(t *testing.T) {
	seen := map[string]bool{}
	counts := map[byte]int{}
	for i := 0; i < 2000; i++ {
		s := NewState()
		if len(s) != StateLen || !ValidState(s) {
			t.Fatalf("state %q", s)
		}
		if seen[s] {
			t.Fatalf("state %q made twice", s)
		}
		seen[s] = true
		for j := 0; j < len(s); j++ {
			counts[s[j]]++
		}
	}
	if len(counts) != 62 {
		t.Fatalf("%d distinct characters in 64000, want all 62", len(counts))
	}
}

func TestValidStateRefuses(t *testing.T) {
	for _, s := range []string{"", strings.Repeat("a", 129), "abc-def", "abc_def", "abc def", "abc\n", "é", "a/b", "a%20"} {
		if ValidState(s) {
			t.Errorf("ValidState(%q)", s)
		}
	}
	if !ValidState(strings.Repeat("Z9", 64)) {
		t.Error("a 128-character state refused")
	}
}

func TestStateBinding(t *testing.T) {
	a, b := NewState(), NewState()
	v := StateBinding(a)
	if strings.Contains(v, a) {
		t.Fatal("the binding holds the state")
	}
	if !CheckStateBinding(v, a) {
		t.Fatal("binding of a refused")
	}
	for _, bad := range []string{"", StateBinding(b), v[:len(v)-1], v + "x", a} {
		if CheckStateBinding(bad, a) {
			t.Errorf("binding %q accepted for another state", bad)
		}
	}
}

func TestBindingCookie(t *testing.T) {
	c := BindingCookie("abc", true)
	if c.Name != "__Host-wx_state" || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.MaxAge != 600 || c.Domain != "" {
		t.Fatalf("https binding cookie %+v", c)
	}
	if c := BindingCookie("abc", false); c.Name != "wx_state" || c.Secure {
		t.Fatalf("http binding cookie %+v", c)
	}
	if c := ClearBindingCookie(true); c.MaxAge >= 0 || c.Name != "__Host-wx_state" || c.Value != "" {
		t.Fatalf("clearing %+v", c)
	}
}
