package weblogin

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSessionCookieAttributes(t *testing.T) {
	tests := []struct {
		configured string
		https      bool
		wantName   string
	}{
		{"", true, "__Host-wx_session"},
		{"", false, "wx_session"},
		{"my_sess", true, "my_sess"},
		{"my_sess", false, "my_sess"},
	}
	for _, tt := range tests {
		name := SessionCookieName(tt.configured, tt.https)
		c := SessionCookie(name, "v", tt.https, time.Hour)
		if c.Name != tt.wantName || c.Secure != tt.https || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" || c.MaxAge != 3600 {
			t.Errorf("%+v: cookie %+v", tt, c)
		}
		// The Set-Cookie line a browser reads.
		line := c.String()
		for _, want := range []string{"HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=3600"} {
			if !contains(line, want) {
				t.Errorf("Set-Cookie %q lacks %s", line, want)
			}
		}
		if tt.https != contains(line, "Secure") {
			t.Errorf("Set-Cookie %q: Secure wrong for https=%v", line, tt.https)
		}
		cl := ClearSessionCookie(name, tt.https)
		if cl.Name != name || cl.MaxAge >= 0 || cl.Value != "" || cl.Path != "/" || cl.Secure != tt.https {
			t.Errorf("clearing cookie %+v", cl)
		}
		if !contains(cl.String(), "Max-Age=0") {
			t.Errorf("clearing Set-Cookie %q", cl.String())
		}
	}
	if c := SessionCookie("n", "v", true, 0); c.MaxAge != 0 {
		t.Errorf("no ttl: Max-Age %d", c.MaxAge)
	}
}

func contains(s, sub string) bool { return len(sub) == 0 || indexOf(s, sub) >= 0 }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestCheckCookieNameRefuses(t *testing.T) {
	for _, tt := range []struct {
		name      string
		httpsOnly bool
	}{
		{"", true}, {"a b", true}, {"a;b", true}, {"a=b", true}, {"a\x00", true}, {"é", true}, {"a,b", true},
		{"__Host-x", false}, {"__Secure-x", false}, {"__host-x", false},
	} {
		if CheckCookieName(tt.name, tt.httpsOnly) == nil {
			t.Errorf("name %q (https only %v) accepted", tt.name, tt.httpsOnly)
		}
	}
	for _, ok := range []string{"wx_session", "__Host-s", "a.b-c"} {
		if err := CheckCookieName(ok, true); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

func TestCookieValue(t *testing.T) {
	h := http.Header{"Cookie": {"a=1; wx_session=tok.en; b=2", "c=3"}}
	if v, ok := CookieValue(h, "wx_session"); !ok || v != "tok.en" {
		t.Fatalf("got %q %v", v, ok)
	}
	if v, ok := CookieValue(h, "c"); !ok || v != "3" {
		t.Fatalf("got %q %v", v, ok)
	}
	for _, name := range []string{"session", "x_wx_session", "wx"} {
		if _, ok := CookieValue(h, name); ok {
			t.Errorf("%q found", name)
		}
	}
	if v, _ := CookieValue(http.Header{"Cookie": {`q="quoted"`}}, "q"); v != "quoted" {
		t.Errorf("quoted %q", v)
	}
	if n := testing.AllocsPerRun(100, func() { CookieValue(h, "wx_session") }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

func TestStripCookieKeepsTheOthersByteForByte(t *testing.T) {
	const s = "__Host-wx_session"
	tests := []struct {
		name string
		in   []string
		want []string // nil: no Cookie header
	}{
		{"only", []string{s + "=tok"}, nil},
		{"first", []string{s + "=tok; a=1;b=2"}, []string{"a=1;b=2"}},
		{"middle", []string{"a=1;  " + s + "=tok;b=\"2\""}, []string{"a=1;b=\"2\""}},
		{"last", []string{"a=1 ; b=2; " + s + "=tok"}, []string{"a=1 ; b=2"}},
		{"twice", []string{s + "=x; a=1; " + s + "=y"}, []string{"a=1"}},
		{"in a second header", []string{"a=1", s + "=tok", "b=2"}, []string{"a=1", "b=2"}},
		{"absent", []string{"a=1; b=2"}, []string{"a=1; b=2"}},
		{"similar names kept", []string{"x" + s + "=1; " + s + "x=2; " + s + "=3"}, []string{"x" + s + "=1; " + s + "x=2"}},
		{"value holding the name kept", []string{"a=" + s + "; " + s + "=t"}, []string{"a=" + s}},
		{"odd bytes kept", []string{"a=1;;  b = 2 ;" + s + "=t; c=%7F;d"}, []string{"a=1;;  b = 2 ; c=%7F;d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Cookie": append([]string(nil), tt.in...), "Other": {"x"}}
			StripCookie(h, s)
			if got := h["Cookie"]; !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			if h.Get("Other") != "x" {
				t.Fatal("another header changed")
			}
		})
	}
	h := http.Header{"Cookie": {"a=1; b=2"}}
	if n := testing.AllocsPerRun(100, func() { StripCookie(h, s) }); n != 0 {
		t.Errorf("%v allocations without the cookie", n)
	}
	StripCookie(http.Header{}, s) // no Cookie header: nothing to do
}

// The session cookie is stripped from every cookie-authenticated request:
// first or last in the header (where browsers put it but for ties) it
// costs nothing, in the middle one string.
func TestStripCookieAllocations(t *testing.T) {
	const s = "__Host-wx_session"
	for _, tt := range []struct {
		line string
		max  float64
	}{
		{s + "=tok; a=1; b=2", 0},
		{"a=1; b=2; " + s + "=tok", 0},
		{s + "=tok", 0},
		{"a=1; " + s + "=tok; b=2", 1},
	} {
		buf := make([]string, 1)
		h := http.Header{"Cookie": buf}
		n := testing.AllocsPerRun(100, func() {
			buf[0] = tt.line
			h["Cookie"] = buf
			StripCookie(h, s)
		})
		if n > tt.max {
			t.Errorf("%q: %v allocations, want at most %v", tt.line, n, tt.max)
		}
	}
}

// TakeCookie finds what CookieValue finds and leaves what StripCookie
// leaves.
func TestTakeCookieIsCookieValueThenStripCookie(t *testing.T) {
	const s = "__Host-wx_session"
	for _, in := range [][]string{
		{s + "=tok"},
		{s + "=tok; a=1;b=2"},
		{"a=1;  " + s + "=tok;b=\"2\""},
		{"a=1 ; b=2; " + s + "=tok"},
		{s + "=x; a=1; " + s + "=y"},
		{"a=1", s + "=tok", "b=2"},
		{"a=1", s + "=tok"},
		{"a=1; b=2"},
		{"x" + s + "=1; " + s + "x=2; " + s + "=3"},
		{"a=" + s + "; " + s + "=t"},
		{"a=1;;  b = 2 ;" + s + "=t; c=%7F;d"},
		{s + `="quoted"; a=1`},
		{"a=1; " + s + "=x", s + "=y"},
		{"a=1;"},
		{""},
	} {
		want := http.Header{"Cookie": append([]string(nil), in...)}
		wantV, wantOK := CookieValue(want, s)
		StripCookie(want, s)
		got := http.Header{"Cookie": append([]string(nil), in...)}
		v, ok := TakeCookie(got, s)
		if v != wantV || ok != wantOK || !reflect.DeepEqual(got["Cookie"], want["Cookie"]) {
			t.Errorf("%q: got %q %v %q, want %q %v %q", in, v, ok, got["Cookie"], wantV, wantOK, want["Cookie"])
		}
	}
	line := "_ga=GA1.2.3; " + s + "=" + strings.Repeat("v", 500)
	h := http.Header{"Cookie": {line}}
	if n := testing.AllocsPerRun(100, func() { h["Cookie"][0] = line; TakeCookie(h, s) }); n != 0 {
		t.Errorf("%v allocations for the cookie last in the line", n)
	}
}
