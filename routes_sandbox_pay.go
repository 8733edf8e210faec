package wechatauth

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-wechat/wechatauth/internal/apierr"
	"github.com/caddy-wechat/wechatauth/wechattest"
)

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
	cb, err := pay.MarkPaid(prepayID)
	paid, _ := pay.OrderByPrepayID(prepayID)
	if paid.State != "SUCCESS" {
		return apierr.InvalidRequest.WithMessage("The order cannot be paid (it is closed).")
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
