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

// A browser beginning login after login keeps its newest state cookies
// (the last sent) and is told to drop the older ones; cookies not named
// exactly like a state cookie of the scheme are never touched.
func TestStaleStateCookies(t *testing.T) {
	const a, b, c, d, e = "wx_state_AAAAAAAA", "wx_state_bbbbbbbb", "wx_state_C-C_C9CC", "wx_state_dddddddd", "wx_state_eeeeeeee"
	tests := []struct {
		name  string
		https bool
		lines []string
		want  []string
	}{
		{"none", false, nil, nil},
		{"three are kept", false, []string{a + "=1; " + b + "=2; " + c + "=3"}, nil},
		{"four: the oldest goes", false, []string{a + "=1; " + b + "=2; " + c + "=3; " + d + "=4"}, []string{a}},
		{"five, among other cookies, over several lines", false,
			[]string{"k=v; " + a + "=1", b + "=2;x=y", c + "=3; " + d + "=4;" + e + "=5; z=1"}, []string{a, b}},
		{"order is the header's, not the name's", false, []string{e + "=1; " + d + "=2; " + c + "=3; " + b + "=4; " + a + "=5"}, []string{e, d}},
		{"not exactly a state cookie's name", false, []string{
			"wx_state=1; wx_state_AAAAAAA=1; wx_state_AAAAAAAAA=1; xwx_state_AAAAAAAA=1; Wx_state_AAAAAAAA=1; wx_state_AAAA.AAA=1; " +
				"wx_stateXAAAAAAAA=1; __Host-wx_state_AAAAAAAA=1; " + b + "=2; " + c + "=3; " + d + "=4"}, nil},
		{"malformed pairs", false, []string{";;  " + a + " =1;" + b + "; =x; " + "\t" + c + "=\"3\" ;; " + d + "=;" + e + "=5 ;"}, []string{a}},
		{"a name sent twice counts where it is newest", false, []string{a + "=1; " + b + "=2; " + c + "=3; " + a + "=4; " + d + "=5"}, []string{b}},
		{"HTTPS counts __Host- names only", true, []string{
			a + "=1; " + b + "=2; __Host-" + a + "=1; __Host-" + b + "=2; __Host-" + c + "=3; __Host-" + d + "=4; __Host-" + e + "=5"},
			[]string{"__Host-" + a, "__Host-" + b}},
		{"HTTP leaves __Host- names", false, []string{"__Host-" + a + "=1; __Host-" + b + "=2; __Host-" + c + "=3; __Host-" + d + "=4"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.lines != nil {
				h["Cookie"] = tt.lines
			}
			got := StaleStateCookies(h, tt.https)
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// The names StateCookieName makes are the ones StaleStateCookies counts,
// and clearing one makes a cookie the browser takes in place of it.
func TestStaleStateCookiesOfRealStates(t *testing.T) {
	for _, https := range []bool{false, true} {
		var names, pairs []string
		for range 6 {
			n := StateCookieName(NewState(), https)
			names, pairs = append(names, n), append(pairs, n+"=v")
		}
		got := StaleStateCookies(http.Header{"Cookie": {strings.Join(pairs, "; ")}}, https)
		if strings.Join(got, " ") != strings.Join(names[:3], " ") {
			t.Fatalf("https %v: got %q, want %q", https, got, names[:3])
		}
		c := ClearStateCookieNamed(got[0], https)
		if c.Name != got[0] || c.MaxAge >= 0 || c.Value != "" || c.Path != "/" || c.Domain != "" || c.Secure != https {
			t.Fatalf("clearing %+v", c)
		}
	}
}
