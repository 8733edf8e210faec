package wechat

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// PhoneInfo is a user's phone number, from the phone API or from the
// decrypted data of the old phone button. WeChat documents countryCode as a
// string and sends it as a number too; both decode, always to a string.
type PhoneInfo struct {
	PhoneNumber     string `json:"phoneNumber"`
	PurePhoneNumber string `json:"purePhoneNumber"`
	CountryCode     string `json:"countryCode"`
}

// UnmarshalJSON accepts countryCode as a JSON string or number.
func (p *PhoneInfo) UnmarshalJSON(b []byte) error {
	var raw struct {
		PhoneNumber     string          `json:"phoneNumber"`
		PurePhoneNumber string          `json:"purePhoneNumber"`
		CountryCode     json.RawMessage `json:"countryCode"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	p.PhoneNumber, p.PurePhoneNumber, p.CountryCode = raw.PhoneNumber, raw.PurePhoneNumber, ""
	if len(raw.CountryCode) == 0 || string(raw.CountryCode) == "null" {
		return nil
	}
	if raw.CountryCode[0] == '"' {
		if err := json.Unmarshal(raw.CountryCode, &p.CountryCode); err != nil {
			return err
		}
	} else {
		var n json.Number
		if err := json.Unmarshal(raw.CountryCode, &n); err != nil {
			return err
		}
		p.CountryCode = n.String()
	}
	p.CountryCode = strings.TrimPrefix(p.CountryCode, "+")
	return nil
}

// ErrForeignWatermark is a phone number whose watermark names another app
// than the one asked for.
var ErrForeignWatermark = errors.New("wechat: the phone number's watermark names another app")

// PhoneNumber exchanges a phone button code (e.detail.code) for the user's
// number with POST /wxa/business/getuserphonenumber. openid, when given,
// lets WeChat check that the code belongs to that user. The code is
// single-use, so the call is retried only when WeChat refused the access
// token (the code was not consumed then).
func (c *Client) PhoneNumber(ctx context.Context, appid, code, openid string) (*PhoneInfo, error) {
	// One budget for the whole exchange: token fetch, call and retry.
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	body := map[string]string{"code": code}
	if openid != "" {
		body["openid"] = openid
	}
	var info *PhoneInfo
	err := c.withAccessToken(ctx, appid, func(tok string) error {
		var out struct {
			status
			PhoneInfo json.RawMessage `json:"phone_info"`
		}
		if err := c.call(ctx, APIPhoneNumber, http.MethodPost, "/wxa/business/getuserphonenumber"+tokenQuery(tok), body, &out); err != nil {
			return err
		}
		var p PhoneInfo
		var marked struct {
			Watermark *struct {
				AppID *string `json:"appid"`
			} `json:"watermark"`
		}
		switch {
		case len(out.PhoneInfo) == 0 || string(out.PhoneInfo) == "null":
			return &UnavailableError{API: APIPhoneNumber, Err: errors.New("answer without phone_info")}
		case json.Unmarshal(out.PhoneInfo, &p) != nil || json.Unmarshal(out.PhoneInfo, &marked) != nil || !validPhone(&p):
			return &UnavailableError{API: APIPhoneNumber, Err: errors.New("answer with a malformed phone_info")}
		case p.PhoneNumber == "":
			return &UnavailableError{API: APIPhoneNumber, Err: errors.New("answer without phone_info")}
		case marked.Watermark != nil && marked.Watermark.AppID != nil && *marked.Watermark.AppID != appid:
			// Another app's user (the answer of another app's token): the
			// data is not this app's, and asking again will not change it.
			return ErrForeignWatermark
		}
		info = &p
		return nil
	})
	return info, err
}

// maxPhoneLen bounds a phone number of WeChat's answer; the longest
// international number with its prefix is well under it.
const maxPhoneLen = 32

// validPhone reports whether p is shaped as WeChat gives a phone: numbers
// of at most maxPhoneLen printable ASCII characters, and a country code of
// at most four digits. The numbers reach the app as they are, so nothing
// else (line breaks, NUL, a flood) may pass.
func validPhone(p *PhoneInfo) bool {
	printable := func(s string) bool {
		if len(s) > maxPhoneLen {
			return false
		}
		for i := 0; i < len(s); i++ {
			if s[i] < 0x20 || s[i] > 0x7e {
				return false
			}
		}
		return true
	}
	if !printable(p.PhoneNumber) || !printable(p.PurePhoneNumber) || len(p.CountryCode) > 4 {
		return false
	}
	for i := 0; i < len(p.CountryCode); i++ {
		if p.CountryCode[i] < '0' || p.CountryCode[i] > '9' {
			return false
		}
	}
	return true
}
