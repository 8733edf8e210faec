package wechatauth

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-wechat/wechatauth/internal/apierr"
	"github.com/caddy-wechat/wechatauth/internal/audit"
	"github.com/caddy-wechat/wechatauth/internal/idheader"
	"github.com/caddy-wechat/wechatauth/internal/msgcrypt"
	"github.com/caddy-wechat/wechatauth/internal/outbox"
)

// pushSource is X-WX-SOURCE on every delivered push.
const pushSource = "wx_push"

// ServeHTTP answers the console's URL check (GET) and WeChat's pushes
// (POST). It never calls next.
func (p *Push) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	q := r.URL.Query()
	switch r.Method {
	case http.MethodGet:
		p.urlCheck(w, r, q.Get("signature"), q.Get("timestamp"), q.Get("nonce"), q.Get("echostr"))
		return nil
	case http.MethodPost:
	default:
		apierr.Write(w, r, apierr.Method.Allowing([]string{http.MethodGet, http.MethodPost}))
		return nil
	}
	body, aerr := apierr.ReadBodyUpTo(w, r, maxPushBody, apierr.PushTooLarge)
	if aerr != nil {
		p.refuse(w, r, aerr)
		return nil
	}
	msg, format, aerr := p.open(r, q, body)
	if aerr != nil {
		p.refuse(w, r, aerr)
		return nil
	}
	if !p.deliver(w, r, q.Get("nonce"), msg, format) {
		p.unsee(r, q)
	}
	return nil
}

// urlCheck answers the console's check of the URL: echostr when the
// signature over token, timestamp and nonce holds. The same check serves
// every mode.
func (p *Push) urlCheck(w http.ResponseWriter, r *http.Request, sig, ts, nonce, echostr string) {
	if sig == "" || echostr == "" || !msgcrypt.VerifySignature(sig, p.token, ts, nonce) {
		p.refuse(w, r, apierr.PushRefused)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(echostr))
	audit.Event(p.audit, r, "push", "url_check", p.AppID, "", "")
}

// open verifies a push and returns its plaintext and format. Safe and
// compatibility mode (aes_key set) trust only the decrypted Encrypt,
// checked by msg_signature; plain mode checks signature, the timestamp's
// age and that (timestamp, nonce) is new, since its signature does not
// cover the body.
func (p *Push) open(r *http.Request, q map[string][]string, body []byte) ([]byte, msgcrypt.Format, *apierr.Error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	ts, nonce := get("timestamp"), get("nonce")
	if p.crypter != nil {
		env, err := msgcrypt.ParseEnvelope(body)
		if err != nil {
			return nil, 0, apierr.InvalidRequest.WithMessage("The body is not a WeChat push in XML or JSON.")
		}
		if env.Encrypt == "" {
			return nil, 0, apierr.PushRefused
		}
		msg, err := p.crypter.Open(get("msg_signature"), ts, nonce, env.Encrypt)
		switch {
		case errors.Is(err, msgcrypt.ErrMalformed):
			return nil, 0, apierr.InvalidRequest.WithMessage("Encrypt is not base64.")
		case err != nil:
			return nil, 0, apierr.PushRefused
		}
		if _, err := msgcrypt.Sniff(msg); err != nil {
			return nil, 0, apierr.InvalidRequest.WithMessage("The decrypted push is not XML or JSON.")
		}
		return msg, env.Format, nil
	}
	if !msgcrypt.VerifySignature(get("signature"), p.token, ts, nonce) {
		return nil, 0, apierr.PushRefused
	}
	format, err := msgcrypt.Sniff(body)
	if err != nil {
		return nil, 0, apierr.InvalidRequest.WithMessage("The body is not a WeChat push in XML or JSON.")
	}
	if env, err := msgcrypt.ParseEnvelope(body); err == nil && env.Encrypt != "" {
		if ev, _, err := msgcrypt.ParseEvent(body); err == nil && ev.ID() == "" {
			// Safe mode in the console, plain mode here: the envelope
			// alone would reach the upstream.
			p.warnEncrypted.Do(func() {
				p.logger.Warn("wechat_push: a push came encrypted (safe mode) but aes_key is not set: set aes_key to the console's EncodingAESKey; such pushes are refused")
			})
			return nil, 0, apierr.PushRefused
		}
	}
	if aerr := p.fresh(r, ts, nonce); aerr != nil {
		return nil, 0, aerr
	}
	return body, format, nil
}

// deliver hands a verified push to the outbox and answers WeChat: the
// upstream's passive reply when the first delivery gave one, else
// success; an error answer, which WeChat retries, when the push could be
// neither delivered nor queued. It reports whether the push was taken
// (delivered, queued, or one taken before).
func (p *Push) deliver(w http.ResponseWriter, r *http.Request, nonce string, msg []byte, format msgcrypt.Format) bool {
	ev, _, err := msgcrypt.ParseEvent(msg)
	if err != nil {
		p.refuse(w, r, apierr.InvalidRequest.WithMessage("The push is not well-formed XML or JSON."))
		return false
	}
	if !headerSafe(ev.FromUserName, ev.MsgID, ev.CreateTime, ev.Event, ev.TraceID) {
		// Taken, it could never be delivered: its headers would not be.
		p.refuse(w, r, apierr.InvalidRequest.WithMessage("The push's sender or event id holds characters a header cannot carry."))
		return false
	}
	// WeChat's retries of one event are byte for byte the same plaintext,
	// so its hash tells a retry from another event.
	sum := sha256.Sum256(msg)
	hash := hex.EncodeToString(sum[:16])
	id := ev.ID()
	if id == "" {
		// Nothing names the event: its bytes do.
		id = "sha256:" + hash
	}
	// The key WeChat's retries are recognised by: MsgIds are unique only
	// within an app, and an event without one (FromUserName:CreateTime:
	// Event) need not be unique at all, two in one second being two events.
	key := p.AppID + ":msg:" + ev.MsgID
	if ev.MsgID == "" {
		key = p.AppID + ":sha256:" + hash
	}
	openid := ev.FromUserName
	if strings.HasPrefix(openid, "gh_") {
		openid = "" // an account's original id, not a user
	}
	h := make(http.Header, 6)
	if format == msgcrypt.JSON {
		h["Content-Type"] = []string{"application/json"}
	} else {
		h["Content-Type"] = []string{"text/xml"}
	}
	h[idheader.Source] = []string{pushSource}
	h["X-Wx-Appid"] = []string{p.AppID}
	if openid != "" {
		h["X-Wx-Openid"] = []string{openid}
	}
	h["X-Wx-Event-Id"] = []string{id}
	res, err := p.delivery.accept(r.Context(), id, key, p.To, h, msg)
	kind := ev.Event
	if kind == "" {
		kind = "message"
	}
	fields := []zap.Field{zap.String("event_id", id), zap.String("event_type", kind)}
	if err != nil || res.Status == outbox.Busy {
		result := res.Status.String() // busy: another instance delivers it now
		if err != nil {
			result = "failed"
			p.logger.Error("wechat_push: push neither delivered nor queued; WeChat will retry",
				zap.String("event_id", id), zap.Error(err))
		}
		audit.Event(p.audit, r, "push", result, p.AppID, openid, "", fields...)
		apierr.Write(w, r, apierr.DeliveryUnavailable)
		return false
	}
	audit.Event(p.audit, r, "push", res.Status.String(), p.AppID, openid, "", fields...)
	// White space alone, or "success", is no reply; any other body is
	// passed on byte for byte, white space included.
	reply := res.Body
	if trimmed := bytes.TrimSpace(reply); res.Status != outbox.Delivered || len(trimmed) == 0 || string(trimmed) == "success" {
		writeSuccess(w)
		return true
	}
	if p.crypter != nil {
		sealed, err := p.crypter.Seal(reply, strconv.FormatInt(time.Now().Unix(), 10), nonce, format)
		if err != nil {
			// Only an unusable nonce gets here; WeChat gets no reply.
			p.logger.Warn("wechat_push: cannot seal the passive reply; answering success", zap.String("event_id", id), zap.Error(err))
			writeSuccess(w)
			return true
		}
		reply = sealed
	}
	if format == msgcrypt.JSON {
		w.Header().Set("Content-Type", "application/json")
	} else {
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	}
	w.WriteHeader(http.StatusOK)
	w.Write(reply)
	return true
}

func writeSuccess(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte("success"))
}

// refuse answers a push that was not taken, and audits it with the code.
func (p *Push) refuse(w http.ResponseWriter, r *http.Request, e *apierr.Error) {
	audit.Event(p.audit, r, "push", e.Code(), p.AppID, "", "")
	apierr.Write(w, r, e)
}

// headerSafe reports whether every value may go into a delivery's headers
// (X-WX-OPENID, X-WX-EVENT-ID and the like): visible ASCII only, as
// openids, MsgIds, event names and notification ids are. Anything else,
// a CR or LF above all, would make every delivery attempt fail.
func headerSafe(values ...string) bool {
	for _, v := range values {
		if len(v) > 256 {
			return false
		}
		for i := 0; i < len(v); i++ {
			if v[i] < 0x21 || v[i] > 0x7e {
				return false
			}
		}
	}
	return true
}
