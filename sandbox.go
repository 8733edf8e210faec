package wechatauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-wechat/wechatauth/internal/apierr"
	"github.com/caddy-wechat/wechatauth/wechattest"
)

// sandboxEncrypt plays the part of WeChat's client for wx.getUserInfo: it
// encrypts the posted JSON object with the caller's session_key, adding
// openId and watermark as WeChat does, and answers what a mini program
// would get: encryptedData, iv, rawData (the object as sent) and its
// signature. Served only in sandbox mode.
func (h *Handler) sandboxEncrypt(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	_, s, err := h.session(r)
	if err != nil {
		return err
	}
	body, aerr := apierr.ReadBody(w, r)
	if aerr != nil {
		return aerr
	}
	raw := bytes.TrimSpace(body)
	// A name given twice would decrypt to the last value while rawData
	// and its signature hold both: refused, as on the other routes.
	obj := make(map[string]json.RawMessage)
	err = apierr.WalkObject(raw, func(name string, dec *json.Decoder) error {
		var v json.RawMessage
		if dec.Decode(&v) != nil {
			return apierr.ErrNotObject
		}
		obj[name] = v
		return nil
	})
	var fe *apierr.FieldError
	switch {
	case errors.As(err, &fe):
		return apierr.InvalidRequest.WithMessage(fe.Error())
	case err != nil:
		return apierr.InvalidRequest.WithMessage("The body must be a JSON object.")
	}
	obj["openId"], _ = json.Marshal(s.OpenID)
	obj["watermark"], _ = json.Marshal(map[string]any{"appid": s.AppID, "timestamp": time.Now().Unix()})
	plain, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	enc, iv, err := wechattest.Encrypt(s.SessionKey, plain)
	if err != nil {
		return err
	}
	apierr.WriteJSON(w, http.StatusOK, map[string]string{
		"encryptedData": enc,
		"iv":            iv,
		"rawData":       string(raw),
		"signature":     wechattest.Sign(string(raw), s.SessionKey),
	})
	return nil
}
