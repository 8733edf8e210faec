package wechatauth

import (
	"errors"

	"github.com/caddy-wechat/wechatauth/internal/apierr"
	"github.com/caddy-wechat/wechatauth/internal/metrics"
	"github.com/caddy-wechat/wechatauth/internal/opendata"
	"github.com/caddy-wechat/wechatauth/internal/session"
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
