package wxpay

import (
	"context"
	"crypto/x509"
	"sync"

	"github.com/wechatpay-apiv3/wechatpay-go/core"
)

// certStore holds the platform certificates by serial: those configured
// and those last fetched from /v3/certificates. It is the SDK's
// CertificateGetter for its certificate verifier.
type certStore struct {
	mu      sync.RWMutex
	static  map[string]*x509.Certificate
	fetched map[string]*x509.Certificate
	all     *core.CertificateMap
}

var _ core.CertificateGetter = (*certStore)(nil)

func newCertStore() *certStore {
	return &certStore{all: core.NewCertificateMap(nil)}
}

func (s *certStore) setStatic(m map[string]*x509.Certificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.static = m
	s.resetLocked()
}

func (s *certStore) setFetched(m map[string]*x509.Certificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fetched = m
	s.resetLocked()
}

func (s *certStore) resetLocked() {
	all := make(map[string]*x509.Certificate, len(s.static)+len(s.fetched))
	for k, v := range s.static {
		all[k] = v
	}
	for k, v := range s.fetched {
		all[k] = v
	}
	s.all.Reset(all)
}

// Get returns the certificate of a serial.
func (s *certStore) Get(ctx context.Context, serial string) (*x509.Certificate, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.all.Get(ctx, serial)
}

// GetAll returns a copy of every certificate by serial.
func (s *certStore) GetAll(ctx context.Context) map[string]*x509.Certificate {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.all.GetAll(ctx)
}

// GetNewestSerial returns the serial of the certificate valid from the
// latest date.
func (s *certStore) GetNewestSerial(ctx context.Context) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.all.GetNewestSerial(ctx)
}

func (s *certStore) newest() string { return s.GetNewestSerial(context.Background()) }

func (s *certStore) has(serial string) bool {
	_, ok := s.Get(context.Background(), serial)
	return ok
}
