package wechatauth

import (
	"testing"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

// Sites with the same signing keys share one key ring, and a reload that
// keeps the keys keeps the ring: the new config is provisioned before the
// old one is cleaned up.
func TestSitesWithTheSameKeysShareOneRingAcrossReloads(t *testing.T) {
	keys := func(h *Handler) *Handler {
		h.SigningKey, h.PreviousSigningKeys = ringKeyNew, []string{ringKeyOld}
		return h
	}
	a := newSite(t, keys(&Handler{}), wechattest.Options{AutoCodes: true})
	b := newSite(t, keys(&Handler{RoutePrefix: "/other"}), wechattest.Options{AutoCodes: true})
	if a.h.tokens.Ring() != b.h.tokens.Ring() {
		t.Fatal("two sites with the same keys hold two rings")
	}
	other := newSite(t, &Handler{SigningKey: ringKeyOld}, wechattest.Options{AutoCodes: true})
	if other.h.tokens.Ring() == a.h.tokens.Ring() {
		t.Fatal("a site with other keys shares their ring")
	}
	ring := a.h.tokens.Ring()
	reloaded := newSite(t, keys(&Handler{}), wechattest.Options{AutoCodes: true})
	a.h.Cleanup() // the old config goes; the test's cleanup calls it again, which is a no-op
	b.h.Cleanup()
	if reloaded.h.tokens.Ring() != ring {
		t.Fatal("the reloaded config made a ring of its own")
	}
}
