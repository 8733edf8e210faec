package wechatauth

import (
	"crypto/ecdsa"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"golang.org/x/net/http/httpguts"

	"github.com/caddy-wechat/wechatauth/internal/assertion"
	"github.com/caddy-wechat/wechatauth/internal/idheader"
)

// deliverySigner returns the signer that puts an assertion on each of a
// receiver's deliveries (nil when on is false): with the key of keyPEM
// (placeholders resolved) when given, else wechat_auth's, kept in Caddy's
// storage, so that the one jwks.json of wechat_auth verifies both. header
// "" is assertion.DefaultHeader; it may not be one of taken or the
// headers every delivery carries. In sandbox the stored key is the
// sandbox's, as wechat_auth's is.
func deliverySigner(ctx caddy.Context, module string, sandbox, on bool, header, keyPEM string, taken ...string) (*assertion.Signer, error) {
	if !on {
		if header != "" || keyPEM != "" {
			return nil, fmt.Errorf("%s: assertion_header or assertion_key is set but assertion is not: add `assertion` to sign deliveries", module)
		}
		return nil, nil
	}
	name := http.CanonicalHeaderKey(header)
	if header == "" {
		name = assertion.DefaultHeader
	}
	if !httpguts.ValidHeaderFieldName(name) {
		return nil, fmt.Errorf("%s: assertion header %q is not a valid header name", module, header)
	}
	for _, t := range append([]string{"X-Wx-Openid", "X-Wx-Appid", "X-Wx-Event-Id", idheader.Source, "Content-Type", "Authorization"}, taken...) {
		if strings.EqualFold(name, t) {
			return nil, fmt.Errorf("%s: assertion header %q is already used for something else", module, header)
		}
	}
	var key *ecdsa.PrivateKey
	var err error
	if keyPEM != "" {
		key, err = assertion.ParseKey([]byte(caddy.NewReplacer().ReplaceKnown(keyPEM, "")))
	} else {
		name := assertion.KeyName
		if sandbox {
			name = assertion.KeyNameSandbox
		}
		key, err = assertion.StoredKey(ctx, ctx.Storage(), name)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: assertion key: %w", module, err)
	}
	s, err := assertion.NewSigner(key, name)
	if err != nil {
		return nil, fmt.Errorf("%s: assertion key: %w", module, err)
	}
	return s, nil
}
