package wechatauth

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/apierr"
	"github.com/caddy-wechat/wechatauth/internal/audit"
	"github.com/caddy-wechat/wechatauth/internal/credential"
	"github.com/caddy-wechat/wechatauth/internal/identity"
	"github.com/caddy-wechat/wechatauth/internal/metrics"
	"github.com/caddy-wechat/wechatauth/internal/platform"
	"github.com/caddy-wechat/wechatauth/internal/session"
	"github.com/caddy-wechat/wechatauth/internal/weblogin"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// webLogin is the provisioned web login (WebConfig).
type webLogin struct {
	oaApp, qrApp, scope string
	returnTo            *weblogin.ReturnTo
	firstReturnTo       string   // where a login without return_to goes
	origins             []string // the return_to origins: they may send cookie writes
	cookie              string   // configured name, or "" for the scheme's default
	cookieNames         []string // every name the session cookie has here: removed before the upstream
	openBase            string   // "" in sandbox: this site's {route_prefix}/sandbox
	knobs               bool     // pass the fake's user, decline and snapshot on
	once                weblogin.OnceStore
	auth                platform.WebAuthorizer
}

// cookieName is the session cookie's name on r's site.
func (wl *webLogin) cookieName(r *http.Request) string {
	return weblogin.SessionCookieName(wl.cookie, r.TLS != nil)
}

// stripCookies removes the session cookie, under each of its names, and
// the state cookies of logins begun from the request's Cookie headers:
// they are for this module, never for the upstream, whichever credential
// the request carries.
func (wl *webLogin) stripCookies(h http.Header) {
	for _, n := range wl.cookieNames {
		weblogin.StripCookie(h, n)
	}
	weblogin.StripStateCookies(h)
}

// Keys of the one-time values in the store.
const (
	stateKeyPrefix   = "web_state:"
	handoffKeyPrefix = "web_handoff:"
	codeKeyPrefix    = "web_code:" // an exchanged code's digest
)

// The web flows, as the metrics and the state name them.
const (
	flowOA      = "oa"
	flowQR      = "qr"
	flowHandoff = "handoff"
)

// pendingLogin is what a state stands for until its callback.
type pendingLogin struct {
	ReturnTo string `json:"return_to"`
	AppID    string `json:"appid"`
	Flow     string `json:"flow"`
}

// pendingHandoff is what a handoff ticket stands for until it is opened:
// the mini program's session, which must still be live then.
type pendingHandoff struct {
	ReturnTo string `json:"return_to"`
	AppID    string `json:"appid"`
	OpenID   string `json:"openid"`
	UnionID  string `json:"unionid,omitempty"`
	SID      string `json:"sid"`
	// KID names the signing key of the handler that made the link: only
	// a handler whose keys include it (whose sessions are the same) opens
	// the link.
	KID string `json:"kid"`
	// Issued is when the token that made the link was issued (Unix
	// seconds): a user revoked after that has the link refused, as the
	// token is. A link without it counts as issued at the epoch.
	Issued int64 `json:"iat,omitempty"`
}

// appOf is the app this site's logins of flow are made with.
func (wl *webLogin) appOf(flow string) string {
	switch flow {
	case flowOA:
		return wl.oaApp
	case flowQR:
		return wl.qrApp
	}
	return ""
}

// inWeChat reports whether the browser is WeChat's own.
func inWeChat(r *http.Request) bool { return strings.Contains(r.UserAgent(), "MicroMessenger") }

// Refusals of the web routes.
var (
	errNoOAApp       = apierr.InvalidRequest.WithMessage("This site has no login inside WeChat (no Official Account is configured): open it in a browser outside WeChat.")
	errNoQRApp       = apierr.InvalidRequest.WithMessage("This site has no QR login outside WeChat (no website app is configured): open it inside WeChat.")
	errReturnTo      = apierr.InvalidRequest.WithMessage("return_to is not one of the addresses this site may return to.")
	errBadState      = apierr.InvalidRequest.WithMessage("The login's state is missing or malformed: start the login again.")
	errUnknownState  = apierr.InvalidRequest.WithMessage("This login is unknown, already finished or expired: start the login again.")
	errForeignState  = apierr.InvalidRequest.WithMessage("This login was started in another browser: start the login again here.")
	errBadWebCode    = apierr.InvalidRequest.WithMessage("The authorization code is malformed: start the login again.")
	errBadTicket     = apierr.InvalidRequest.WithMessage("The handoff link is malformed.")
	errUsedTicket    = apierr.InvalidRequest.WithMessage("This handoff link was already used or has expired: ask the mini program for a new one.")
	errForeignTicket = apierr.InvalidRequest.WithMessage("This handoff link was made by another site: ask the mini program for a link to this one.")
	errOtherSite     = apierr.InvalidRequest.WithMessage("This login was started on another site: start the login again here.")
)

// webCodeRefused is invalid_code's message on the web, where there is no
// wx.login to call.
const webCodeRefused = "WeChat refused the authorization code (expired or already used): start the login again."

// webLoginStart sends the browser to WeChat's authorization page: the
// Official Account's inside WeChat, the website app's QR page outside.
func (h *Handler) webLoginStart(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	wl := h.web
	site, https := siteOf(r)
	q := r.URL.Query()
	returnTo := q.Get("return_to")
	if returnTo == "" {
		returnTo = wl.firstReturnTo
	}
	back, ok := h.returnToOf(returnTo, site)
	if !ok {
		return errReturnTo
	}
	rec := pendingLogin{ReturnTo: back, AppID: wl.qrApp, Flow: flowQR}
	page, scope := "/connect/qrconnect", "snsapi_login"
	if inWeChat(r) {
		rec.AppID, rec.Flow = wl.oaApp, flowOA
		page, scope = "/connect/oauth2/authorize", wl.scope
	}
	if rec.AppID == "" {
		if rec.Flow == flowOA {
			return errNoOAApp
		}
		return errNoQRApp
	}
	state := weblogin.NewState()
	b, _ := json.Marshal(rec)
	if err := wl.once.PutOnce(r.Context(), stateKeyPrefix+state, b, weblogin.StateTTL); err != nil {
		h.logger.Warn("web login state not stored", zap.Error(err))
		return apierr.StoreUnavailable
	}
	// The browser keeps at most MaxStateCookies state cookies: the oldest
	// beyond that are cleared. The new one is set after the clearings, so
	// it stands whatever its name.
	for _, name := range weblogin.StaleStateCookies(r.Header, https) {
		http.SetCookie(w, weblogin.ClearStateCookieNamed(name, https))
	}
	http.SetCookie(w, weblogin.StateCookie(state, https))
	base := wl.openBase
	if base == "" {
		base = site + strings.TrimSuffix(h.RoutePrefix, "/") + "/sandbox"
	}
	// WeChat reads the parameters in this order.
	var u strings.Builder
	u.WriteString(base + page)
	u.WriteString("?appid=" + url.QueryEscape(rec.AppID))
	u.WriteString("&redirect_uri=" + url.QueryEscape(site+strings.TrimSuffix(h.RoutePrefix, "/")+"/web/callback"))
	u.WriteString("&response_type=code&scope=" + scope + "&state=" + state)
	if wl.knobs {
		for _, k := range []string{"user", "decline", "snapshot"} {
			if v := q.Get(k); v != "" {
				u.WriteString("&" + k + "=" + url.QueryEscape(v))
			}
		}
	}
	u.WriteString("#wechat_redirect")
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusFound)
	return nil
}

// webCallback finishes a login where WeChat sends the browser back: the
// state is taken (so a second load of the page makes no second session),
// checked against the browser's state cookie, and the code exchanged.
func (h *Handler) webCallback(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	flow, err := h.doWebCallback(w, r)
	if flow != "" {
		metrics.WebLogins.WithLabelValues(flow, apierr.Result(err)).Inc()
		// The state is spent once the login is known (flow set): loading
		// this callback again cannot work, whatever failed after.
		var ae *apierr.Error
		if errors.As(err, &ae) && ae.Status() == http.StatusServiceUnavailable {
			err = ae.WithMessage(webUnavailable)
		}
	}
	return err
}

// refuse answers the 401 of a protected path. On a site with web login, a
// browser opening a page gets it as a page with a link to log in and come
// back, when this site may return to that page; other clients get the
// JSON answer.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, aerr *apierr.Error) {
	if h.web == nil {
		apierr.Refuse(w, r, aerr)
		return
	}
	w.Header().Add("Vary", "Accept")
	// A page load, not a script's request naming text/html among others.
	if mode := r.Header.Get("Sec-Fetch-Mode"); !apierr.WantsPage(r) || mode != "" && mode != "navigate" {
		apierr.Refuse(w, r, aerr)
		return
	}
	after := apierr.Unwanted(w, r)
	// The page as the browser asked for it, before any rewrite.
	page := r.URL.RequestURI()
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && orig.URL != nil {
		page = orig.URL.RequestURI()
	}
	var links []apierr.Link
	if site, _ := siteOf(r); h.web.returnTo.Allows(page, site) {
		login := strings.TrimSuffix(h.RoutePrefix, "/") + "/web/login?return_to=" + url.QueryEscape(page)
		links = append(links, apierr.Link{Href: login, Text: "用微信登录 · Log in with WeChat"})
	}
	apierr.WritePage(w, r, aerr, links...)
	after()
}

// returnToOf returns the address a login asked to return to goes to: one
// the return_to prefixes allow, and none of this module's own routes,
// which would make a login's last redirect the first step of another (a
// handoff link's, say, opened as if the browser had asked for it).
func (h *Handler) returnToOf(candidate, site string) (string, bool) {
	back, err := h.web.returnTo.Check(candidate, site)
	if err != nil {
		return "", false
	}
	u, err := url.Parse(back)
	if err != nil {
		return "", false
	}
	if _, ours := h.routes.find(u.Path); ours {
		return "", false
	}
	return back, true
}

// liveWebSession returns the identity of r's session cookie, when it is
// the credential of r and live.
func (h *Handler) liveWebSession(r *http.Request) (*identity.Identity, bool) {
	v, ok := h.webCookie(r)
	if !ok {
		return nil, false
	}
	id, aerr := h.authenticateCookieAt(v, time.Now())
	return id, aerr == nil
}

// loggedInBack returns where a login without return_to goes, when r
// carries a live session cookie of this site; the route's audit entry
// then says already_logged_in, for the cookie's user.
func (h *Handler) loggedInBack(r *http.Request) (string, bool) {
	id, ok := h.liveWebSession(r)
	if !ok {
		return "", false
	}
	site, _ := siteOf(r)
	back, err := h.web.returnTo.Check(h.web.firstReturnTo, site)
	if err != nil {
		return "", false
	}
	audit.Noted(r, id.AppID, id.OpenID, id.SID)
	audit.NotedResult(r, resultAlreadyLoggedIn)
	return back, true
}

// resultAlreadyLoggedIn is the audit result of a callback that made no
// session because the browser holds a live one.
const resultAlreadyLoggedIn = "already_logged_in"

// webUnavailable is the message of a callback's 503 (WeChat or the store
// failed after the state was spent).
const webUnavailable = "The login could not be finished (WeChat or the session store is not answering): start the login again."

func (h *Handler) doWebCallback(w http.ResponseWriter, r *http.Request) (flow string, err error) {
	wl := h.web
	site, https := siteOf(r)
	q := r.URL.Query()
	state := q.Get("state")
	if !weblogin.ValidState(state) {
		return "", errBadState
	}
	raw, ok, serr := wl.once.Take(r.Context(), stateKeyPrefix+state)
	switch {
	case serr != nil:
		h.logger.Warn("web login state not readable", zap.Error(serr))
		return "", apierr.StoreUnavailable
	case !ok:
		// Loading the callback again (reload, back button) after the login
		// finished: a browser already logged in goes where a login without
		// return_to goes, not to an error page.
		if back, ok := h.loggedInBack(r); ok {
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, back, http.StatusFound)
			return "", nil
		}
		return "", errUnknownState
	}
	var rec pendingLogin
	if json.Unmarshal(raw, &rec) != nil || rec.AppID == "" {
		return "", errUnknownState
	}
	audit.Noted(r, rec.AppID, "", "")
	// The store of one-time values may be shared with other sites: a login
	// finishes only on a site with the app it began with and that may
	// return where it was to go.
	if rec.AppID != wl.appOf(rec.Flow) {
		return rec.Flow, errOtherSite
	}
	if _, err := wl.returnTo.Check(rec.ReturnTo, site); err != nil {
		return rec.Flow, errOtherSite
	}
	// Login CSRF: the state must be this browser's. WeChat's browser may
	// drop the cookie between here and WeChat, so there, only for a login
	// begun inside WeChat (the Official Account's) and only when the
	// browser holds no state cookie at all, it is accepted without. A QR
	// login's state never is: one begun by another browser and opened in
	// WeChat would log the victim in as someone else.
	if v, ok := weblogin.CookieValue(r.Header, weblogin.StateCookieName(state, https)); ok {
		if !weblogin.CheckStateBinding(v, state) {
			return rec.Flow, errForeignState
		}
	} else if rec.Flow != flowOA || weblogin.HasStateCookie(r.Header, https) || !inWeChat(r) {
		return rec.Flow, errForeignState
	} else if id, ok := h.liveWebSession(r); ok {
		// Unbound, the state may be anyone's: a login someone began in
		// his own WeChat and sent as a link. It never replaces the
		// session the browser holds, which goes on where it was to go.
		audit.Noted(r, id.AppID, id.OpenID, id.SID)
		audit.NotedResult(r, resultAlreadyLoggedIn)
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, rec.ReturnTo, http.StatusFound)
		return "", nil
	} else {
		metrics.WebUnbound.Inc()
	}
	http.SetCookie(w, weblogin.ClearStateCookie(state, https))
	code := q.Get("code")
	if code == "" {
		return rec.Flow, apierr.AccessDenied
	}
	if !apierr.ValidCode(code) {
		return rec.Flow, errBadWebCode
	}
	// A code makes one session, whatever state it comes back with: one
	// seen before is refused as WeChat refuses a used one, and a fake
	// WeChat (the sandbox) or a slow one cannot make it two.
	digest := sha256.Sum256([]byte(rec.AppID + "\x00" + code))
	switch err := wl.once.PutOnce(r.Context(), codeKeyPrefix+hex.EncodeToString(digest[:]), nil, weblogin.StateTTL); {
	case errors.Is(err, weblogin.ErrExists):
		return rec.Flow, apierr.InvalidCode.WithMessage(webCodeRefused)
	case err != nil:
		h.logger.Warn("web login code not recorded", zap.Error(err))
		return rec.Flow, apierr.StoreUnavailable
	}
	who, werr := wl.auth.WebLogin(r.Context(), rec.AppID, code)
	if werr != nil {
		ae := h.wechatFailure(r.Context(), "web/callback", rec.AppID, werr)
		if ae.Code() == apierr.InvalidCode.Code() {
			ae = ae.WithMessage(webCodeRefused)
		}
		return rec.Flow, ae
	}
	audit.Noted(r, rec.AppID, who.OpenID, "")
	if who.Snapshot {
		return rec.Flow, apierr.SnapshotUser
	}
	if err := h.startWebSession(w, r, rec.AppID, who.OpenID, who.UnionID); err != nil {
		return rec.Flow, err
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, rec.ReturnTo, http.StatusFound)
	return rec.Flow, nil
}

// startWebSession makes a session for a user of appid and sets its cookie.
// It has no session_key: nothing from WeChat's web login decrypts open
// data.
func (h *Handler) startWebSession(w http.ResponseWriter, r *http.Request, appid, openid, unionid string) error {
	if aerr := h.checkBanned(appid, openid); aerr != nil {
		return aerr
	}
	s := &session.Session{SID: session.NewID(), AppID: appid, OpenID: openid, UnionID: unionid}
	s.Created = h.issueTime(s)
	audit.Noted(r, appid, openid, s.SID)
	if err := h.store.Put(r.Context(), s, time.Duration(h.SessionTTL)); err != nil {
		h.logger.Warn("session store refused a new web session", zap.Error(err))
		return apierr.StoreUnavailable
	}
	return h.setSessionCookie(r.Context(), w, r, s)
}

// webHandoff is both halves of the web-view handoff: POST with a Bearer
// token (from the mini program) makes a one-time link; GET, opened in the
// mini program's <web-view>, turns it into a cookie session. A browser
// elsewhere is asked first (handoffConfirm), and its POST of the link from
// the page (without a token) opens it.
func (h *Handler) webHandoff(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if handoffLinkRequest(r) {
		return h.handoffLink(w, r)
	}
	var err error
	switch {
	case r.Method == http.MethodPost:
		if site, _ := siteOf(r); !weblogin.SameOriginPost(r, site) {
			err = errHandoffPost
			break
		}
		err = h.handoffOpen(w, r)
	case pageLoad(r) && inWebView(r) && openedByTheBrowser(r):
		err = h.handoffOpen(w, r)
	case !pageLoad(r) && !isBrowser(r):
		// A client that is no browser: nothing a page can lead there.
		err = h.handoffOpen(w, r)
	case !pageLoad(r):
		// A browser's image, script, frame or fetch, in the web-view or
		// elsewhere: a page's doing.
		err = errHandoffNotAPage
	default:
		if err = h.handoffConfirm(w, r); err == nil {
			audit.NotedResult(r, resultConfirm)
			metrics.WebLogins.WithLabelValues(flowHandoff, resultConfirm).Inc()
			return nil
		}
	}
	countHandoff(err)
	return err
}

// handoffLinkRequest reports whether r asks for a handoff link (the mini
// program's POST, with its token or without a ticket) rather than opening
// one.
func handoffLinkRequest(r *http.Request) bool {
	_, n := credential.Bearer(r.Header["Authorization"])
	return r.Method == http.MethodPost && (n != 0 || !r.URL.Query().Has("ticket"))
}

// countHandoff counts the opening of a handoff link by its answer.
// Requests for a link are no login, and are not counted.
func countHandoff(err error) {
	metrics.WebLogins.WithLabelValues(flowHandoff, apierr.Result(err)).Inc()
}

// countRefusedHandoff counts an opening refused before it is read, as the
// audit log records it.
func countRefusedHandoff(r *http.Request, err error) {
	if !handoffLinkRequest(r) {
		countHandoff(err)
	}
}

// Refusals of a handoff link outside the web-view.
var (
	errHandoffPost     = apierr.CSRFRefused.WithMessage("This link is confirmed only from its own page on this site.")
	errHandoffNotAPage = apierr.CSRFRefused.WithMessage("This link logs in only when opened as a page, in the mini program's web-view or confirmed in a browser.")
)

// confirmScript enables the confirmation page's button a second after the
// page shows and no input came: a click meant for another page, whose
// first click opened this one (double-clickjacking), or one of a stream
// of clicks, lands on a disabled button; a page shown again from the
// back-forward cache, or made visible, waits again. It is the page's only
// script, allowed by its hash.
const confirmScript = `(function(){var b=document.getElementById("go"),t;` +
	`function arm(){b.disabled=true;clearTimeout(t);t=setTimeout(function(){b.disabled=false},1000)}` +
	`function again(){if(b.disabled)arm()}` +
	`addEventListener("pointerdown",again,true);addEventListener("keydown",again,true);` +
	`addEventListener("pageshow",function(e){if(e.persisted)arm()});` +
	`document.addEventListener("visibilitychange",function(){if(document.visibilityState==="visible")arm()});arm()})()`

var confirmScriptHash = func() string {
	sum := sha256.Sum256([]byte(confirmScript))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}()

// resultConfirm is the metric's and the audit's result of a handoff link
// answered with handoffConfirm's page.
const resultConfirm = "confirm"

// inWebView reports whether the browser is WeChat's, in a mini program's
// <web-view>: its User-Agent says MicroMessenger and "miniProgram"
// ("MiniProgramEnv" on WeChat for PC). A page elsewhere cannot change
// what the browser's says.
func inWebView(r *http.Request) bool {
	ua := strings.ToLower(r.UserAgent())
	return strings.Contains(ua, "micromessenger") && strings.Contains(ua, "miniprogram")
}

// fetchedByBrowser reports whether r carries a browser's Fetch Metadata.
func fetchedByBrowser(r *http.Request) bool {
	return r.Header.Get("Sec-Fetch-Mode") != "" || r.Header.Get("Sec-Fetch-Dest") != ""
}

// isBrowser reports whether r comes from a browser: Fetch Metadata (which
// Chromium leaves out towards plain-HTTP sites), or a User-Agent in the
// "Mozilla/5.0" form every browser sends and clients such as curl, Go's
// and okhttp do not. A page cannot change the browser's User-Agent.
func isBrowser(r *http.Request) bool {
	return fetchedByBrowser(r) || strings.HasPrefix(r.UserAgent(), "Mozilla/")
}

// pageLoad reports whether r loads a page in a browser's window: Fetch
// Metadata says a navigation to a document, or, from a browser without
// it, Accept names text/html. A prefetch or prerender (Sec-Purpose, or
// the older Purpose) is none: its page would run, hidden, before anyone
// sees it.
func pageLoad(r *http.Request) bool {
	if r.Header.Get("Sec-Purpose") != "" || r.Header.Get("Purpose") != "" || r.Header.Get("X-Purpose") != "" || r.Header.Get("X-Moz") != "" {
		return false
	}
	if !fetchedByBrowser(r) {
		return apierr.WantsPage(r)
	}
	mode, dest := r.Header.Get("Sec-Fetch-Mode"), r.Header.Get("Sec-Fetch-Dest")
	return (mode == "" || mode == "navigate") && (dest == "" || dest == "document")
}

// openedByTheBrowser reports whether a page load was begun by the browser
// itself, as the mini program opening its <web-view> is: Fetch Metadata
// says Sec-Fetch-Site none. A load a page began (a link or script on a
// page the web-view shows), or one without Fetch Metadata (a plain-HTTP
// page, an old WebView), which cannot tell, gets the page asking first.
func openedByTheBrowser(r *http.Request) bool {
	return r.Header.Get("Sec-Fetch-Site") == "none"
}

// handoffConfirm answers a handoff link that a browser opened as a page
// (outside the mini program's web-view, or in it not as the mini program
// opens it) with a page asking whether to log in, whose button POSTs the link back: a login link anyone can make for
// himself must not log in a browser that his page, or a link he sent, led
// there (login CSRF). The ticket stays unused until the POST, which must
// come from this page's origin, and the page may not be framed.
func (h *Handler) handoffConfirm(w http.ResponseWriter, r *http.Request) error {
	ticket := r.URL.Query().Get("ticket")
	if !weblogin.ValidTicket(ticket) {
		return errBadTicket
	}
	action := strings.TrimSuffix(h.RoutePrefix, "/") + "/web/handoff?ticket=" + ticket
	note := ""
	if _, ok := h.liveWebSession(r); ok {
		note = `<p>此浏览器已登录；继续将换成链接的用户。 <span lang="en">This browser is logged in already: continuing logs it in as the link's user instead.</span></p>`
	}
	cancel := "/"
	if site, _ := siteOf(r); h.web.returnTo.Allows(h.web.firstReturnTo, site) {
		cancel = h.web.firstReturnTo
	}
	page := `<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">` +
		`<meta name="viewport" content="width=device-width, initial-scale=1"><title>登录 · Log in</title></head><body>` +
		`<h1>登录 · <span lang="en">Log in</span></h1>` +
		`<p>此链接由微信小程序生成，应在小程序内打开。仅当您本人刚在此请求登录时才继续：别人发来的链接会让您登录成他的账号。 ` +
		`<span lang="en">This link was made by a WeChat mini program to open inside it. Continue only if you asked to log in here yourself: a link someone sent you would log you in as them. It works for 60 seconds.</span></p>` +
		note + `<form method="post" action="` + html.EscapeString(action) + `"><button id="go" type="submit" disabled>继续登录 · <span lang="en">Continue</span></button></form>` +
		`<noscript><p>此页需要 JavaScript。 <span lang="en">This page needs JavaScript.</span></p></noscript>` +
		`<p><a href="` + html.EscapeString(cancel) + `">取消 · <span lang="en">Cancel</span></a></p><script>` + confirmScript + `</script></body></html>` + "\n"
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src "+confirmScriptHash+"; frame-ancestors 'none'")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	// The page's URL holds the unused ticket: what leaves it (Cancel,
	// Continue, the favicon) names only the origin, still enough for the
	// POST's Origin check, where same-origin would send the whole URL into
	// the site's access log and to its upstream.
	hd.Set("Referrer-Policy", "strict-origin")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Length", strconv.Itoa(len(page)))
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, page)
	return nil
}

// handoffLink answers {"url"}: a link on this site, valid once for 60 s,
// that holds a random ticket and nothing else.
func (h *Handler) handoffLink(w http.ResponseWriter, r *http.Request) error {
	id, aerr := h.authenticateBearer(r)
	if aerr != nil {
		return aerr
	}
	body, aerr := apierr.ReadBody(w, r)
	if aerr != nil {
		return aerr
	}
	returnTo, aerr := returnToField(r.Header.Get("Content-Type"), body)
	if aerr != nil {
		return aerr
	}
	site, _ := siteOf(r)
	back, ok := h.returnToOf(returnTo, site)
	if !ok {
		return errReturnTo
	}
	ticket := weblogin.NewTicket()
	b, _ := json.Marshal(pendingHandoff{ReturnTo: back, AppID: id.AppID, OpenID: id.OpenID, UnionID: id.UnionID, SID: id.SID,
		KID: h.tokens.Ring().Signer().Kid, Issued: id.Issued.Unix()})
	if err := h.web.once.PutOnce(r.Context(), handoffKey(ticket), b, weblogin.TicketTTL); err != nil {
		h.logger.Warn("web-view handoff not stored", zap.Error(err))
		return apierr.StoreUnavailable
	}
	apierr.WriteJSON(w, http.StatusOK, struct {
		URL string `json:"url"`
	}{site + strings.TrimSuffix(h.RoutePrefix, "/") + "/web/handoff?ticket=" + ticket})
	return nil
}

// handoffKey is where a handoff ticket's record is kept: under the
// ticket's digest, since the ticket itself opens a session, and whoever
// reads the store (a Redis backup, a read-only user) must not be able to.
func handoffKey(ticket string) string {
	d := sha256.Sum256([]byte(ticket))
	return handoffKeyPrefix + hex.EncodeToString(d[:])
}

// handoffOpen takes a handoff ticket and, while the mini program's session
// is still live, opens a cookie session for the same user and app.
func (h *Handler) handoffOpen(w http.ResponseWriter, r *http.Request) error {
	ticket := r.URL.Query().Get("ticket")
	if !weblogin.ValidTicket(ticket) {
		return errBadTicket
	}
	raw, ok, err := h.web.once.Take(r.Context(), handoffKey(ticket))
	switch {
	case err != nil:
		h.logger.Warn("web-view handoff not readable", zap.Error(err))
		return apierr.StoreUnavailable
	case !ok:
		return errUsedTicket
	}
	var rec pendingHandoff
	if json.Unmarshal(raw, &rec) != nil || rec.AppID == "" {
		return errUsedTicket
	}
	// The store of one-time values may be shared with other sites (their
	// own keys, apps and return_to): a link opens only on a site whose
	// sessions are the maker's, and goes only where this site may return
	// to. A refused link is spent.
	if _, ok := h.tokens.Ring().ByKID[rec.KID]; !ok {
		return errForeignTicket
	}
	if _, ok := h.secrets[rec.AppID]; !ok {
		return errForeignTicket
	}
	site, _ := siteOf(r)
	back, err := h.web.returnTo.Check(rec.ReturnTo, site)
	if err != nil {
		return errReturnTo
	}
	audit.Noted(r, rec.AppID, rec.OpenID, "")
	maker := identity.Identity{Key: identity.UserKey(rec.AppID, rec.OpenID), Issued: time.Unix(rec.Issued, 0)}
	if h.store.Revoked(rec.SID, time.Now()) || h.users.Refused(&maker) {
		return apierr.InvalidToken
	}
	if err := h.startWebSession(w, r, rec.AppID, rec.OpenID, rec.UnionID); err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, back, http.StatusFound)
	return nil
}

// errNoReturnTo refuses a handoff request without return_to.
var errNoReturnTo = apierr.InvalidRequest.WithMessage("The field return_to is required: the page the web-view should open.")

// returnToField reads the return_to of a JSON or form body.
func returnToField(contentType string, body []byte) (string, *apierr.Error) {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "application/x-www-form-urlencoded" {
		v, err := url.ParseQuery(string(body))
		if err != nil || len(v["return_to"]) > 1 {
			return "", apierr.InvalidRequest.WithMessage("The form body is malformed.")
		}
		if v.Get("return_to") == "" {
			return "", errNoReturnTo
		}
		return v.Get("return_to"), nil
	}
	var f struct {
		ReturnTo string `json:"return_to"`
	}
	if len(strings.TrimSpace(string(body))) > 0 && json.Unmarshal(body, &f) != nil {
		return "", apierr.InvalidRequest.WithMessage("The body is not a JSON object with a string return_to.")
	}
	if f.ReturnTo == "" {
		return "", errNoReturnTo
	}
	return f.ReturnTo, nil
}

// sandboxWebPage serves one of the fake WeChat's authorization pages at
// {route_prefix}/sandbox<page>: it redirects straight back to the callback
// with a code (?user= picks the user; ?decline=1 declines).
func (h *Handler) sandboxWebPage(page string) routeFunc {
	return func(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
		// WeChat redirects only to the app's registered domain; the
		// sandbox's pages, to this site's own callback. Anything else gets
		// WeChat's error page (10003), never a redirect with a code.
		if !h.ownCallback(r, r.URL.Query().Get("redirect_uri")) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, "<!doctype html><title>WeChat authorization error</title><h1>redirect_uri domain differs from the configured one (10003)</h1>\n")
			return nil
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path, r2.URL.RawPath = page, ""
		h.fake.ServeHTTP(w, r2)
		return nil
	}
}

// ownCallback reports whether redirectURI is this site's web callback, as
// the request reached the site.
func (h *Handler) ownCallback(r *http.Request, redirectURI string) bool {
	back, err := url.Parse(redirectURI)
	if err != nil || back.User != nil || back.Fragment != "" || back.Opaque != "" {
		return false
	}
	site, _ := siteOf(r)
	return strings.EqualFold(back.Scheme+"://"+back.Host, site) &&
		back.EscapedPath() == strings.TrimSuffix(h.RoutePrefix, "/")+"/web/callback"
}
