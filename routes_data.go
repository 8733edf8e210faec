package wechatauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/caddy-wechat/wechatauth/internal/apierr"
	"github.com/caddy-wechat/wechatauth/internal/identity"
	"github.com/caddy-wechat/wechatauth/internal/idheader"
	"github.com/caddy-wechat/wechatauth/internal/metrics"
	"github.com/caddy-wechat/wechatauth/internal/opendata"
	"github.com/caddy-wechat/wechatauth/internal/platform"
	"github.com/caddy-wechat/wechatauth/internal/session"
	"github.com/caddy-wechat/wechatauth/wechat"
	"github.com/caddy-wechat/wechatauth/wechattest"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// decryptFields decrypts open data with the session's key and runs every
// check the routes promise (padding, JSON object, watermark, openId,
// rawData signature), counting the result.
func (h *Handler) decryptFields(f *apierr.Fields, s *session.Session) ([]byte, error) {
	plain, err := decryptChecked(f, s)
	result := apierr.Result(err)
	metrics.Decryptions.WithLabelValues(result).Inc()
	return plain, err
}

// decryptChecked maps every failure to one fixed answer: all decryption
// failures look alike, so an answer tells nothing about padding.
func decryptChecked(f *apierr.Fields, s *session.Session) ([]byte, error) {
	if f.EncryptedData == "" || f.IV == "" {
		return nil, apierr.InvalidRequest.WithMessage("The fields encryptedData and iv are required.")
	}
	if (f.RawData == "") != (f.Signature == "") {
		return nil, apierr.InvalidRequest.WithMessage("rawData and signature go together: send both or neither.")
	}
	plain, err := opendata.Decrypt(s.SessionKey, f.EncryptedData, f.IV)
	switch {
	case errors.Is(err, opendata.ErrBadBase64):
		return nil, apierr.InvalidRequest.WithMessage("encryptedData and iv must be standard base64.")
	case err != nil:
		return nil, apierr.DecryptFailed
	}
	// The plaintext is answered as JSON, which is UTF-8 text: bytes that
	// are not are no open data WeChat makes.
	if !utf8.Valid(plain) {
		return nil, apierr.DecryptFailed
	}
	switch err := opendata.CheckOwner(plain, s.AppID, s.OpenID); {
	case errors.Is(err, opendata.ErrForeignData):
		return nil, apierr.WatermarkMismatch
	case err != nil:
		return nil, apierr.DecryptFailed
	}
	if f.Signature != "" && opendata.CheckSignature(f.RawData, f.Signature, s.SessionKey) != nil {
		return nil, apierr.SignatureMismatch
	}
	return plain, nil
}

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

// userinfo decrypts wx.getUserInfo / getUserProfile data; with
// forward_profile the result goes upstream instead of back to the client.
func (h *Handler) userinfo(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return h.serveOpenData(w, r, next, h.ForwardProfile)
}

// decrypt decrypts any other open data: WeRun, share and group info.
func (h *Handler) decrypt(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return h.serveOpenData(w, r, next, false)
}

func (h *Handler) serveOpenData(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, forward bool) error {
	id, s, err := h.session(r)
	if err != nil {
		return err
	}
	f, aerr := apierr.ReadFields(w, r)
	if aerr != nil {
		return aerr
	}
	plain, err := h.decryptFields(f, s)
	if err != nil {
		return err
	}
	if forward {
		return h.forward(w, r, next, id, plain)
	}
	apierr.WriteRawJSON(w, http.StatusOK, plain)
	return nil
}

// phone returns the caller's phone number, from a phone button code (the
// current API) or from the old button's encrypted data.
func (h *Handler) phone(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	id, aerr := h.authenticateBearer(r)
	if aerr != nil {
		return aerr
	}
	f, aerr := apierr.ReadFields(w, r)
	if aerr != nil {
		return aerr
	}
	var info platform.Phone
	switch {
	case f.Code != "":
		if !apierr.ValidCode(f.Code) {
			return apierr.InvalidRequest.WithMessage("The field code is malformed.")
		}
		phoner, ok := h.platform.(platform.Phoner)
		if !ok {
			return errNoPhoneAPI
		}
		var err error
		info, err = phoner.PhoneNumber(r.Context(), id.AppID, f.Code, id.OpenID)
		if err != nil {
			ae := h.wechatFailure(r.Context(), "phone", id.AppID, err)
			if ae.Code() == apierr.InvalidCode.Code() {
				ae = ae.WithMessage("WeChat refused the phone code (expired or already used): ask the user to tap the phone button again.")
			}
			return ae
		}
	case f.EncryptedData != "" || f.IV != "":
		s, err := h.sessionOf(r.Context(), id)
		if err != nil {
			return err
		}
		plain, err := h.decryptFields(f, s)
		if err != nil {
			return err
		}
		var decrypted wechat.PhoneInfo
		if json.Unmarshal(plain, &decrypted) != nil || decrypted.PhoneNumber == "" {
			// The same answer as every other decryption failure.
			return apierr.DecryptFailed
		}
		info = platform.Phone(decrypted)
	default:
		return apierr.InvalidRequest.WithMessage("Send code (from the phone button's e.detail.code) or encryptedData and iv.")
	}
	body, err := json.Marshal(info)
	if err != nil {
		return err
	}
	if h.ForwardProfile {
		return h.forward(w, r, next, id, body)
	}
	apierr.WriteRawJSON(w, http.StatusOK, body)
	return nil
}

// errNoPhoneAPI answers a phone code on a platform without a phone-number
// API: the request cannot succeed here, and the old button's encrypted data
// still can.
var errNoPhoneAPI = apierr.InvalidRequest.WithMessage("This platform has no phone-number API: send encryptedData and iv from the phone button instead of code.")

// forward sends decrypted data to the next handler as a JSON POST with the
// caller's identity; the upstream's answer is what the client gets.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, id *identity.Identity, body []byte) error {
	r.Method = http.MethodPost
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = nil
	r.ContentLength = int64(len(body))
	r.TransferEncoding = nil
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	r.Header.Del("Content-Encoding")
	if h.web != nil {
		h.web.stripCookies(r.Header)
	}
	h.setIdentity(r, id, idheader.SourceClient)
	return next.ServeHTTP(w, r)
}

// sandboxPay serves POST /sandbox/pay {"prepay_id"}: the signed-in user
// pays their order at the sandbox merchant's fake WeChat Pay, which sends
// the signed, encrypted TRANSACTION.SUCCESS callback to the order's
// notify_url, as WeChat Pay does once a payer confirms. It answers once
// the callback was answered, with what the notify_url said.
func (h *Handler) sandboxPay(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	id, _, err := h.session(r)
	if err != nil {
		return err
	}
	body, aerr := apierr.ReadBody(w, r)
	if aerr != nil {
		return aerr
	}
	prepayID, aerr := prepayIDOf(r.Header.Get("Content-Type"), body)
	if aerr != nil {
		return aerr
	}
	var pay *wechattest.Pay
	var order wechattest.PayOrder
	if h.app != nil {
		pay, order = h.app.sandboxPay(prepayID)
	}
	if pay == nil {
		return apierr.InvalidRequest.WithMessage("No order of a sandbox merchant has this prepay_id: create the order through wechat_pay first.")
	}
	if order.OpenID != id.OpenID && order.SubOpenID != id.OpenID {
		return apierr.InvalidRequest.WithMessage("This order's payer is another user.")
	}
	if aerr := unpayable(order.State); aerr != nil {
		return aerr
	}
	cb, err := pay.MarkPaid(prepayID)
	paid, _ := pay.OrderByPrepayID(prepayID)
	if paid.State != "SUCCESS" {
		if aerr := unpayable(paid.State); aerr != nil {
			return aerr
		}
		return apierr.InvalidRequest.WithMessage("The order could not be paid.")
	}
	answer := map[string]any{
		"out_trade_no":   paid.OutTradeNo,
		"transaction_id": paid.TransactionID,
		"trade_state":    paid.State,
		"notify_status":  cb.Status,
	}
	if err != nil {
		answer["notify_error"] = "the order's notify_url did not answer"
	}
	apierr.WriteJSON(w, http.StatusOK, answer)
	return nil
}

// unpayable refuses to pay a sandbox order in state: closed, or refunded
// (paying a paid one again sends its callback again, as WeChat Pay's
// retry does).
func unpayable(state string) *apierr.Error {
	switch state {
	case "CLOSED":
		return apierr.InvalidRequest.WithMessage("The order cannot be paid (it is closed).")
	case "REFUND":
		return apierr.InvalidRequest.WithMessage("The order cannot be paid (it was paid and refunded).")
	}
	return nil
}

// prepayIDOf reads prepay_id from a JSON or form body.
func prepayIDOf(contentType string, body []byte) (string, *apierr.Error) {
	var v string
	if strings.HasPrefix(strings.TrimSpace(contentType), "application/x-www-form-urlencoded") {
		q, err := url.ParseQuery(string(body))
		if err != nil || len(q["prepay_id"]) != 1 {
			return "", apierr.InvalidRequest.WithMessage("The body must carry one prepay_id.")
		}
		v = q.Get("prepay_id")
	} else {
		err := apierr.WalkObject(body, func(name string, dec *json.Decoder) error {
			if name == "prepay_id" {
				return apierr.DecodeString(name, dec, &v)
			}
			var skip json.RawMessage
			return dec.Decode(&skip)
		})
		var fe *apierr.FieldError
		switch {
		case errors.As(err, &fe):
			return "", apierr.InvalidRequest.WithMessage(fe.Error())
		case err != nil:
			return "", apierr.InvalidRequest.WithMessage("The body must be a JSON object with prepay_id.")
		}
	}
	if v == "" || len(v) > 64 {
		return "", apierr.InvalidRequest.WithMessage("prepay_id is missing.")
	}
	return v, nil
}
