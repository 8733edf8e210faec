package wechatauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/caddy-wechat/wechatauth/internal/apierr"
	"github.com/caddy-wechat/wechatauth/internal/audit"
	"github.com/caddy-wechat/wechatauth/internal/identity"
	"github.com/caddy-wechat/wechatauth/internal/session"
	"github.com/caddy-wechat/wechatauth/wechat"
	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(adminUsers{})
}

// adminUsers is the admin API of wechat_auth, on Caddy's admin endpoint
// (and so behind its access control: localhost only by default):
//
//	POST   /wechat_auth/users/revoke {"appid","openid"}
//	POST   /wechat_auth/users/ban    {"appid","openid","until"?,"reason"?}
//	DELETE /wechat_auth/users/ban    {"appid","openid"}
//	GET    /wechat_auth/users/bans
//
// A revocation refuses every token of the user issued before it, on every
// instance sharing the session store; a ban also refuses the user's
// logins (403 user_blocked) until it ends or is lifted. Both are kept by
// the session store (Caddy's storage, or Redis) across restarts.
type adminUsers struct {
	audit *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (adminUsers) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.wechat_auth",
		New: func() caddy.Module { return new(adminUsers) },
	}
}

// Provision takes the audit logger, so the admin API's events go where the
// handler's do.
func (a *adminUsers) Provision(ctx caddy.Context) error {
	a.audit = newAuditLogger(ctx)
	return nil
}

// Routes returns the admin routes.
func (a *adminUsers) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/wechat_auth/users/revoke", Handler: caddy.AdminHandlerFunc(a.handleRevoke)},
		{Pattern: "/wechat_auth/users/ban", Handler: caddy.AdminHandlerFunc(a.handleBan)},
		{Pattern: "/wechat_auth/users/bans", Handler: caddy.AdminHandlerFunc(a.handleBans)},
	}
}

// storesOf returns the stores of the wechat_auth handlers serving appid,
// found by ranging the store pool, and the longest token_ttl or
// session_ttl among them (how long a cut-off must be kept).
func storesOf(appid string) ([]session.UserStore, time.Duration) {
	var out []session.UserStore
	var ttl time.Duration
	stores.Range(func(_, v any) bool {
		ps := v.(*pooledStore)
		longest, serves := ps.serves(appid)
		if us, ok := ps.Store.(session.UserStore); ok && serves {
			out = append(out, us)
			ttl = max(ttl, longest)
		}
		return true
	})
	return out, ttl
}

// keepUntil is when a cut-off made at cut stops mattering: every session
// begun before it has ended (ttl is the longest token_ttl and session_ttl
// of the sites serving the app) and every token issued before it has
// expired, whatever token_ttl was when it was issued (each store's token
// horizon).
func keepUntil(ctx context.Context, stores []session.UserStore, cut time.Time, ttl time.Duration) time.Time {
	keep := cut.Add(ttl)
	for _, us := range stores {
		if ss, ok := us.(session.Store); ok {
			if hz, _ := ss.Horizon(ctx); hz.After(keep) {
				keep = hz
			}
		}
	}
	return keep.Add(time.Minute)
}

// allStores returns every store a running wechat_auth handler holds.
func allStores() []session.UserStore {
	var out []session.UserStore
	stores.Range(func(_, v any) bool {
		ps := v.(*pooledStore)
		if us, ok := ps.Store.(session.UserStore); ok && ps.inUse() {
			out = append(out, us)
		}
		return true
	})
	return out
}

// userRequest is the body of the user routes.
type userRequest struct {
	AppID  string `json:"appid"`
	OpenID string `json:"openid"`
	Until  string `json:"until,omitempty"`
	Reason string `json:"reason,omitempty"`

	// known: the appid is served here or in WeChat's form (readUser),
	// judged once, so that the answer's audit entry agrees with the
	// decision whatever a reload does meanwhile.
	known bool
}

// userAnswer is the answer of the user routes.
type userAnswer struct {
	AppID         string `json:"appid"`
	OpenID        string `json:"openid"`
	RevokedBefore string `json:"revoked_before,omitempty"`
	Banned        *bool  `json:"banned,omitempty"`
	Since         string `json:"since,omitempty"`
	Until         string `json:"until,omitempty"`
	Reason        string `json:"reason,omitempty"`
}

const maxReason = 500

// adminError is an error answer of the admin routes, written like the
// handler's: {"error": code, "message": sentence}.
type adminError struct {
	status  int
	code    string
	message string
}

func (e *adminError) Error() string { return e.message }

func badRequest(format string, args ...any) *adminError {
	return &adminError{http.StatusBadRequest, "invalid_request", fmt.Sprintf(format, args...)}
}

// parse reads the body of a user route: a JSON object whose fields have
// their exact names, none given twice, so that a ban or revoke never acts
// on another user than the operator wrote.
func (req *userRequest) parse(body []byte) *adminError {
	fieldsOf := map[string]*string{"appid": &req.AppID, "openid": &req.OpenID, "until": &req.Until, "reason": &req.Reason}
	err := apierr.WalkObject(body, func(name string, dec *json.Decoder) error {
		if dst, ok := fieldsOf[name]; ok {
			return apierr.DecodeString(name, dec, dst)
		}
		for known := range fieldsOf {
			if strings.EqualFold(name, known) {
				return &apierr.FieldError{Name: name, Miscased: known}
			}
		}
		return apierr.SkipValue(dec)
	})
	var fe *apierr.FieldError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fe):
		return badRequest("%s", fe.Error())
	default:
		return badRequest("The body must be a JSON object such as {\"appid\":\"wx…\",\"openid\":\"o…\"}.")
	}
}

// readUser reads and checks the body of a user route.
func readUser(r *http.Request) (*userRequest, []session.UserStore, time.Duration, *adminError) {
	body, err := io.ReadAll(io.LimitReader(r.Body, apierr.MaxBody+1))
	if err != nil {
		return nil, nil, 0, badRequest("The body could not be read.")
	}
	if len(body) > apierr.MaxBody {
		return nil, nil, 0, &adminError{http.StatusRequestEntityTooLarge, "payload_too_large", "The request body is larger than 64 KiB."}
	}
	var req userRequest
	if aerr := req.parse(body); aerr != nil {
		return nil, nil, 0, aerr
	}
	if req.AppID == "" || req.OpenID == "" {
		return &req, nil, 0, badRequest("The fields appid and openid are required.")
	}
	// An appid a site serves is taken as it is (a config judged its
	// form); another must be in WeChat's form, or it is malformed and
	// kept out of the log.
	stores, ttl := storesOf(req.AppID)
	if req.known = len(stores) > 0 || wechat.ValidID(req.AppID); !req.known {
		return &req, nil, 0, badRequest("The appid is malformed: WeChat's appids are letters, digits, '-' and '_', such as wx1234567890abcdef.")
	}
	if !wechat.ValidID(req.OpenID) {
		return &req, nil, 0, badRequest("The openid is malformed: WeChat's openids are up to 64 letters, digits, '-' and '_'.")
	}
	if len(req.Reason) > maxReason || !utf8.ValidString(req.Reason) {
		return &req, nil, 0, badRequest("The reason must be UTF-8 text of at most %d bytes.", maxReason)
	}
	if len(stores) == 0 {
		return &req, nil, 0, &adminError{http.StatusNotFound, "unknown_app", "No wechat_auth site serves this appid."}
	}
	return &req, stores, ttl, nil
}

// nextCutOff is the cut-off of a revocation made now: the next whole
// second, and always later than the user's cut-off so far, since tokens
// issued since that one carry its time. While that one is still ahead (a
// revocation of this user moments ago) it waits for it to pass, at most
// maxCutOffWait, rather than go a second past it: revocations in a row
// would otherwise push the cut-off ever further ahead, and the user's new
// tokens, issued at it, would be refused as issued in the future.
func nextCutOff(ctx context.Context, stores []session.UserStore, req *userRequest) time.Time {
	for {
		now := time.Now()
		cut := session.CutOff(now)
		var prev time.Time
		for _, us := range stores {
			if p := us.Users().Record(req.AppID, req.OpenID).RevokedBefore; p.After(prev) {
				prev = p
			}
		}
		if prev.Before(cut) {
			return cut
		}
		wait := prev.Sub(now)
		if wait > maxCutOffWait { // far ahead (another instance's clock): past it
			return prev.Add(time.Second)
		}
		select {
		case <-ctx.Done():
			return prev.Add(time.Second)
		case <-time.After(wait + time.Millisecond):
		}
	}
}

// revocation is the record of a revocation made at now on top of cur,
// the user's record here: a new cut-off, and the ban as cur has it, from
// when it was decided (a revocation decides nothing about the ban).
func revocation(cur session.UserRecord, cut, keep, now time.Time) *session.UserRecord {
	rec := &session.UserRecord{AppID: cur.AppID, OpenID: cur.OpenID, RevokedBefore: cut, Keep: keep, Changed: now}
	rec.KeepBan(&cur)
	return rec
}

// decide is the record of an operator's ban (nil: its lift) made at now on
// top of cur, the user's record here: decided after cur's decision
// (banDecision), and marked Decided for the store.
func decide(cur session.UserRecord, ban *session.Ban, now time.Time) *session.UserRecord {
	rec := cur
	rec.Ban, rec.Changed, rec.BanChanged, rec.Decided = ban, now, banDecision(cur, now), true
	return &rec
}

// banDecision is when a ban or lift made at now on top of cur is decided:
// now, or just after cur's decision when this instance's clock is behind
// the one that made it. The operator's latest decision must win wherever
// the records meet, and they are ordered by these times.
func banDecision(cur session.UserRecord, now time.Time) time.Time {
	if d := cur.BanDecided(); !now.After(d) {
		return d.Add(time.Millisecond)
	}
	return now
}

// maxCutOffWait bounds a revocation's wait for the one before it to pass.
const maxCutOffWait = 2 * time.Second

// save applies rec to every store and reports what to answer.
func save(r *http.Request, stores []session.UserStore, rec *session.UserRecord) *adminError {
	var down error
	queued := true
	for _, us := range stores {
		if err := us.SaveUser(r.Context(), rec); err != nil {
			down = err
			queued = queued && errors.Is(err, session.ErrQueued)
		}
	}
	switch {
	case down == nil:
		return nil
	case queued:
		caddy.Log().Named("admin.api.wechat_auth").Warn("user record applied on this instance, and queued for the session store", zap.Error(down))
		return &adminError{http.StatusServiceUnavailable, "store_unavailable",
			"Applied on this instance, and written to the session store by itself as soon as the store answers, unless this instance stops (or a reload changes its store) first; until then other instances may not know it."}
	default:
		caddy.Log().Named("admin.api.wechat_auth").Warn("user record applied on this instance only", zap.Error(down))
		return &adminError{http.StatusServiceUnavailable, "store_unavailable",
			"Applied on this instance only: the session store did not take it, so other instances and a restart may not know it. Try again."}
	}
}

func (a *adminUsers) handleRevoke(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return a.answer(w, r, "user_revoke", nil, &adminError{http.StatusMethodNotAllowed, "invalid_request", "Use POST."})
	}
	req, stores, ttl, aerr := readUser(r)
	if aerr != nil {
		return a.answer(w, r, "user_revoke", req, aerr)
	}
	cut := nextCutOff(r.Context(), stores, req)
	rec := revocation(stores[0].Users().Record(req.AppID, req.OpenID), cut, keepUntil(r.Context(), stores, cut, ttl), time.Now())
	if aerr := save(r, stores, rec); aerr != nil {
		return a.answer(w, r, "user_revoke", req, aerr)
	}
	apierr.WriteJSON(w, http.StatusOK, userAnswer{AppID: req.AppID, OpenID: req.OpenID, RevokedBefore: rfc3339(cut)})
	audit.Event(a.audit, r, "user_revoke", "ok", req.AppID, req.OpenID, "", zap.String("revoked_before", rfc3339(cut)))
	return nil
}

func (a *adminUsers) handleBan(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodPost:
		return a.ban(w, r)
	case http.MethodDelete:
		return a.unban(w, r)
	default:
		w.Header().Set("Allow", "POST, DELETE")
		return a.answer(w, r, "ban", nil, &adminError{http.StatusMethodNotAllowed, "invalid_request", "Use POST to ban or DELETE to lift a ban."})
	}
}

func (a *adminUsers) ban(w http.ResponseWriter, r *http.Request) error {
	req, stores, ttl, aerr := readUser(r)
	if aerr != nil {
		return a.answer(w, r, "ban", req, aerr)
	}
	now := time.Now()
	var until time.Time
	if req.Until != "" {
		var err error
		until, err = time.Parse(time.RFC3339, req.Until)
		if err != nil {
			return a.answer(w, r, "ban", req, badRequest("until must be an RFC 3339 time such as 2030-01-02T15:04:05Z, or be left out for a ban until lifted."))
		}
		if !until.After(now) {
			return a.answer(w, r, "ban", req, badRequest("until is in the past."))
		}
	}
	cut := nextCutOff(r.Context(), stores, req)
	rec := decide(stores[0].Users().Record(req.AppID, req.OpenID), &session.Ban{Since: now, Until: until, Reason: req.Reason}, now)
	rec.RevokedBefore, rec.Keep = cut, keepUntil(r.Context(), stores, cut, ttl)
	if aerr := save(r, stores, rec); aerr != nil {
		return a.answer(w, r, "ban", req, aerr)
	}
	apierr.WriteJSON(w, http.StatusOK, banAnswer(rec))
	fields := []zap.Field{zap.String("revoked_before", rfc3339(cut))}
	if !until.IsZero() {
		fields = append(fields, zap.String("until", rfc3339(until)))
	}
	if req.Reason != "" {
		fields = append(fields, zap.String("reason", req.Reason))
	}
	audit.Event(a.audit, r, "ban", "ok", req.AppID, req.OpenID, "", fields...)
	return nil
}

func (a *adminUsers) unban(w http.ResponseWriter, r *http.Request) error {
	req, stores, _, aerr := readUser(r)
	if aerr != nil {
		return a.answer(w, r, "unban", req, aerr)
	}
	cur := stores[0].Users().Record(req.AppID, req.OpenID)
	was := cur.Ban.InForce(time.Now())
	rec := decide(cur, nil, time.Now())
	if aerr := save(r, stores, rec); aerr != nil {
		return a.answer(w, r, "unban", req, aerr)
	}
	banned := false
	apierr.WriteJSON(w, http.StatusOK, userAnswer{AppID: req.AppID, OpenID: req.OpenID, Banned: &banned})
	audit.Event(a.audit, r, "unban", "ok", req.AppID, req.OpenID, "", zap.Bool("was_banned", was))
	return nil
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func banAnswer(rec *session.UserRecord) userAnswer {
	banned := true
	a := userAnswer{AppID: rec.AppID, OpenID: rec.OpenID, Banned: &banned, Reason: rec.Ban.Reason,
		Since: rfc3339(rec.Ban.Since)}
	if !rec.RevokedBefore.IsZero() {
		a.RevokedBefore = rfc3339(rec.RevokedBefore)
	}
	if !rec.Ban.Until.IsZero() {
		a.Until = rfc3339(rec.Ban.Until)
	}
	return a
}

func (a *adminUsers) handleBans(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeAdminError(w, &adminError{http.StatusMethodNotAllowed, "invalid_request", "Use GET."})
		return nil
	}
	now := time.Now()
	out := []userAnswer{}
	seen := make(map[string]bool)
	for _, us := range allStores() {
		for _, rec := range us.Users().Bans(now) {
			if k := identity.UserKey(rec.AppID, rec.OpenID); !seen[k] {
				seen[k] = true
				out = append(out, banAnswer(&rec))
			}
		}
	}
	apierr.WriteJSON(w, http.StatusOK, map[string]any{"bans": out})
	return nil
}

// answer writes an error answer and its audit entry.
func (a *adminUsers) answer(w http.ResponseWriter, r *http.Request, event string, req *userRequest, e *adminError) error {
	writeAdminError(w, e)
	var appid, openid string
	if req != nil && req.known && wechat.ValidID(req.OpenID) {
		// Only what could be a real user: the log gets no arbitrary input.
		appid, openid = req.AppID, req.OpenID
	}
	audit.Event(a.audit, r, event, e.code, appid, openid, "")
	return nil
}

// writeAdminError answers e; a 503 (the store did not take it) says when
// to try again, as the routes' store_unavailable does.
func writeAdminError(w http.ResponseWriter, e *adminError) {
	if e.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "2")
	}
	apierr.WriteJSON(w, e.status, map[string]string{"error": e.code, "message": e.message})
}

// Interface guards
var (
	_ caddy.AdminRouter = (*adminUsers)(nil)
	_ caddy.Provisioner = (*adminUsers)(nil)
)
