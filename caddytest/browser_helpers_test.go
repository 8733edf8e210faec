package caddytest

// Helpers for tests in a real headless Chromium, driven over the DevTools
// protocol with chromedp:
//
//	startBrowser(t) *browser        a fresh Chromium (own profile dir), stopped when the test ends;
//	                                skips when Chromium is missing unless WECHAT_AUTH_REQUIRE_BROWSER=1
//	br.tab(t, userAgent) *tab       a tab with a cookie jar of its own; userAgent "" keeps Chromium's,
//	                                weChatUA acts as WeChat's browser
//	tb.navigate(t, url)             load url (following redirects) and wait for the page
//	tb.waitURL(t, prefix) string    wait until the tab's URL starts with prefix; returns it
//	tb.url(t) string  tb.text(t) string (document.body.innerText)  tb.eval(t, js) string
//	tb.cookies(t, urls...) []*network.Cookie   every cookie the browser would send to urls,
//	                                with HttpOnly, SameSite, Path, Secure as Chromium stored them
//	tb.cookie(t, url, name) *network.Cookie   one of them, or nil
//	tb.ignoreCertErrors(t)          accept httptest's self-signed certificates in this tab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/security"
	"github.com/chromedp/chromedp"
)

// requireBrowserEnv, set to 1, turns a missing Chromium from a skip into a
// failure; CI sets it so the browser tests always run there.
const requireBrowserEnv = "WECHAT_AUTH_REQUIRE_BROWSER"

// weChatUA is the User-Agent of WeChat's in-app browser on an iPhone: the
// "MicroMessenger" in it is what tells a page it runs inside WeChat.
const weChatUA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800323a) NetType/WIFI Language/zh_CN"

// browserTimeout bounds each browser step.
const browserTimeout = 30 * time.Second

type browser struct {
	ctx context.Context // a chromedp context whose browser is running
}

type tab struct {
	ctx context.Context
}

// chromiumPath finds Chromium: Debian's package puts it at /usr/bin/chromium.
func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	for _, p := range []string{"/usr/bin/chromium", "/usr/lib/chromium/chromium"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// startBrowser starts a headless Chromium with a profile of its own.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	bin := chromiumPath()
	if bin == "" {
		if os.Getenv(requireBrowserEnv) == "1" {
			t.Fatal("Chromium is not installed, and " + requireBrowserEnv + "=1 requires the browser tests: apt-get install -y chromium")
		}
		t.Skip("Chromium is not installed: apt-get install -y chromium to run the browser tests")
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox, // root in a container: the sandbox cannot start
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		// Chromium puts its singleton socket in a directory of TMPDIR and
		// leaves it behind when it is killed: keep it in the test's own.
		chromedp.Env("TMPDIR="+t.TempDir()),
	)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	start := time.Now()
	if err := firstRun(bctx, chromedp.Func(func(context.Context, *chromedp.Target) error { return nil })); err != nil {
		t.Fatalf("starting Chromium (%s): %v", bin, err)
	}
	t.Logf("Chromium started in %v", time.Since(start).Round(time.Millisecond))
	return &browser{ctx: bctx}
}

// firstRun runs the first action of a chromedp context, which starts its
// browser or opens its tab: both live as long as the context of that call,
// so it gets no timeout of its own, only a watchdog.
func firstRun(ctx context.Context, a chromedp.Action[chromedp.Void]) error {
	done := make(chan error, 1)
	go func() {
		_, err := chromedp.Run(ctx, a)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(browserTimeout):
		return fmt.Errorf("no answer within %v", browserTimeout)
	}
}

// tab opens a new tab in a browser context of its own (cookies, cache:
// another browser, as far as the sites can tell); with userAgent set,
// every request of the tab and navigator.userAgent carry it.
func (b *browser) tab(t *testing.T, userAgent string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	err := firstRun(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if userAgent == "" {
			return nil
		}
		_, err := cdp.Call(ctx, tg, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: userAgent})
		return err
	}))
	if err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	return &tab{ctx: ctx}
}

// run runs one action on the tab within browserTimeout.
func (tb *tab) run(t *testing.T, what string, a chromedp.Action[chromedp.Void]) {
	t.Helper()
	if _, err := runTab(tb, a); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func runTab[T any](tb *tab, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(tb.ctx, browserTimeout)
	defer cancel()
	return chromedp.Run(ctx, a)
}

// ignoreCertErrors makes the tab accept any certificate, such as
// httptest.NewTLSServer's: a page so loaded is still HTTPS to Chromium, so
// Secure and __Host- cookies behave as on a real site.
func (tb *tab) ignoreCertErrors(t *testing.T) {
	t.Helper()
	tb.run(t, "ignore certificate errors", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, security.SetIgnoreCertificateErrors, security.SetIgnoreCertificateErrorsParams{Ignore: true})
		return err
	}))
}

// navigate loads url, following redirects, and waits for the final page.
func (tb *tab) navigate(t *testing.T, url string) {
	t.Helper()
	tb.run(t, "navigate to "+url, chromedp.Navigate(url))
}

// url returns the tab's current URL.
func (tb *tab) url(t *testing.T) string {
	t.Helper()
	u, err := runTab(tb, chromedp.Location())
	if err != nil {
		t.Fatalf("reading the location: %v", err)
	}
	return u
}

// waitURL waits until the tab's URL starts with prefix and returns it.
func (tb *tab) waitURL(t *testing.T, prefix string) string {
	t.Helper()
	deadline := time.Now().Add(browserTimeout)
	for {
		u, err := runTab(tb, chromedp.Location())
		if err == nil && strings.HasPrefix(u, prefix) {
			return u
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tab is at %q (err %v), never reached %q", u, err, prefix)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// text returns what the page shows: document.body.innerText.
func (tb *tab) text(t *testing.T) string {
	t.Helper()
	return tb.eval(t, `document.body ? document.body.innerText : ""`)
}

// eval evaluates a JavaScript expression whose value is a string.
func (tb *tab) eval(t *testing.T, js string) string {
	t.Helper()
	s, err := runTab(tb, chromedp.Evaluate[string](js))
	if err != nil {
		t.Fatalf("evaluating %q: %v", js, err)
	}
	return s
}

// cookies returns the cookies Chromium holds for urls (the current page
// when none), with their attributes as Chromium stored them.
func (tb *tab) cookies(t *testing.T, urls ...string) []*network.Cookie {
	t.Helper()
	res, err := runTab(tb, func(ctx context.Context, tg *chromedp.Target) (network.GetCookiesResult, error) {
		return cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: urls})
	})
	if err != nil {
		t.Fatalf("reading cookies: %v", err)
	}
	return res.Cookies
}

// cookie returns the cookie called name that Chromium would send to url,
// or nil.
func (tb *tab) cookie(t *testing.T, url, name string) *network.Cookie {
	t.Helper()
	for _, c := range tb.cookies(t, url) {
		if c.Name == name {
			return c
		}
	}
	return nil
}
