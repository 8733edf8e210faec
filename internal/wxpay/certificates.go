package wxpay

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
	"github.com/wechatpay-apiv3/wechatpay-go/utils"
)

// DefaultAPIBase is WeChat Pay's API server.
const DefaultAPIBase = "https://api.mch.weixin.qq.com"

// maxCertificatesBody bounds the /v3/certificates answer read.
const maxCertificatesBody = 1 << 20

type certificatesAnswer struct {
	Data []struct {
		SerialNo           string   `json:"serial_no"`
		EncryptCertificate Resource `json:"encrypt_certificate"`
	} `json:"data"`
}

// RefreshCertificates fetches the platform certificates from
// GET base/v3/certificates (base "" is DefaultAPIBase; client nil is
// http.DefaultClient), decrypts them with the APIv3 key, verifies the
// answer's signature (public key, or a certificate known or in the answer:
// only the holder of the APIv3 key can have encrypted them), and makes
// them the fetched set, replacing the previous one. On error the known
// certificates stay. The SDK's own downloader cannot be pointed at
// another base URL, hence this request.
func (m *Merchant) RefreshCertificates(ctx context.Context, client *http.Client, base string) error {
	if client == nil {
		client = http.DefaultClient
	}
	if base == "" {
		base = DefaultAPIBase
	}
	const path = "/v3/certificates"
	authz, err := m.SignRequest(http.MethodGet, path, nil, time.Now(), "")
	if err != nil {
		return fmt.Errorf("wxpay: certificates: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+path, nil)
	if err != nil {
		return errors.New("wxpay: certificates: pay_api_base is not a URL")
	}
	req.Header.Set("Authorization", authz)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "wechatauth-wxpay")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("wxpay: certificates: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCertificatesBody+1))
	if err != nil {
		return fmt.Errorf("wxpay: certificates: reading the answer: %w", err)
	}
	if len(body) > maxCertificatesBody {
		return errors.New("wxpay: certificates: answer larger than 1 MiB")
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("wxpay: certificates: WeChat Pay answered %d", resp.StatusCode)
	}
	var a certificatesAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return errors.New("wxpay: certificates: answer is not the certificate list")
	}
	fetched := make(map[string]*x509.Certificate, len(a.Data))
	for _, d := range a.Data {
		pemText, err := m.DecryptResource(d.EncryptCertificate)
		if err != nil {
			return fmt.Errorf("wxpay: certificates: %w (is api_v3_key right?)", err)
		}
		cert, err := loadCertificate(string(pemText))
		if err != nil {
			return fmt.Errorf("wxpay: certificates: certificate %q: %v", d.SerialNo, err)
		}
		serial := utils.GetCertificateSerialNumber(*cert)
		if !strings.EqualFold(serial, d.SerialNo) {
			return fmt.Errorf("wxpay: certificates: serial_no %q names a certificate of serial %s", d.SerialNo, serial)
		}
		fetched[serial] = cert
	}
	if len(fetched) == 0 {
		return errors.New("wxpay: certificates: the answer lists none")
	}
	// The answer is verified with what is known plus what it brings.
	all := m.certs.GetAll(ctx)
	for k, v := range fetched {
		all[k] = v
	}
	check := &Merchant{
		publicKeyID: m.publicKeyID,
		publicKey:   m.publicKey,
		certs:       &certStore{all: core.NewCertificateMap(all)},
	}
	check.certVerify = verifiers.NewSHA256WithRSAVerifier(check.certs)
	if err := check.verify(resp.Header, body, time.Now()); err != nil {
		return fmt.Errorf("wxpay: certificates: %w", err)
	}
	m.certs.setFetched(fetched)
	return nil
}

// CertificateSerials returns the serials of the platform certificates
// known, configured and fetched.
func (m *Merchant) CertificateSerials() []string {
	all := m.certs.GetAll(context.Background())
	out := make([]string, 0, len(all))
	for k := range all {
		out = append(out, k)
	}
	return out
}
