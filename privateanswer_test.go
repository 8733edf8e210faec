package wechatauth

import (
	"net/http"
	"slices"
	"testing"
)

func TestKeepPrivateLeavesNoSharedCaching(t *testing.T) {
	for _, tt := range []struct{ in, want []string }{
		{nil, []string{"private"}},
		{[]string{"public, max-age=600"}, []string{"private, max-age=600"}},
		{[]string{"max-age=60", "S-MaxAge=600, must-revalidate"}, []string{"private, max-age=60, must-revalidate"}},
		{[]string{`private="Set-Cookie", max-age=60`}, []string{"private, max-age=60"}},
		{[]string{`no-cache="Set-Cookie, X-A"`}, []string{"private"}},
		{[]string{"no-store"}, []string{"no-store"}},
		{[]string{"public", "No-Store"}, []string{"public", "No-Store"}},
		{[]string{"private, max-age=60"}, []string{"private, max-age=60"}},
	} {
		h := http.Header{}
		for _, v := range tt.in {
			h.Add("Cache-Control", v)
		}
		keepPrivate(h)
		if got := h.Values("Cache-Control"); !slices.Equal(got, tt.want) {
			t.Errorf("%q: got %q, want %q", tt.in, got, tt.want)
		}
	}
}
