package issuer

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"sync"
	"time"

	"github.com/rotor-dev/rotor"
)

// ServingCert is the CA's own HTTPS certificate, issued from its current
// issuer so that clients holding the trust bundle verify it with nothing
// else. It is re-issued at rotor.RenewShare of its life or when the issuer
// has changed, on the handshake that notices. Safe for concurrent use.
type ServingCert struct {
	Names    []string // DNS names and IP addresses; the first is the CN
	Trust    rotor.TrustSource
	Lifetime time.Duration
	Log      *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu       sync.Mutex
	cert     *tls.Certificate
	renewAt  time.Time
	issuerID string
}

func (s *ServingCert) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// GetCertificate implements tls.Config.GetCertificate.
func (s *ServingCert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	issuer, now := s.Trust.Trust().Issuer, s.now()
	if s.cert != nil && now.Before(s.renewAt) && s.issuerID == issuer.KeyID {
		return s.cert, nil
	}
	cert, err := s.issue(issuer, now)
	if err != nil {
		if s.cert != nil && now.Before(s.cert.Leaf.NotAfter) {
			s.Log.Error("re-issuing the serving certificate failed; keeping the current one", "error", err)
			return s.cert, nil
		}
		return nil, err
	}
	s.cert, s.issuerID = cert, issuer.KeyID
	s.renewAt = rotor.RenewalTime(now, cert.Leaf.NotAfter)
	s.Log.Info("issued the CA's serving certificate", "names", s.Names, "not_after", cert.Leaf.NotAfter)
	return cert, nil
}

func (s *ServingCert) issue(issuer *rotor.Issuer, now time.Time) (*tls.Certificate, error) {
	key, err := rotor.GenerateKey(rotor.ECDSAP256, nil)
	if err != nil {
		return nil, fmt.Errorf("serving certificate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("serving certificate serial: %w", err)
	}
	now = now.UTC()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: s.Names[0], Organization: []string{"Rotor"}},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(s.Lifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if tmpl.NotAfter.After(issuer.Certificate.NotAfter) {
		tmpl.NotAfter = issuer.Certificate.NotAfter
	}
	for _, n := range s.Names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer.Certificate, key.Public(), rotor.CryptoSigner(ctx, issuer.Signer))
	if err != nil {
		return nil, fmt.Errorf("issue serving certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	chain := [][]byte{der}
	for _, c := range issuer.Chain {
		chain = append(chain, c.Raw)
	}
	return &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, nil
}

// FileServingCert loads a serving certificate and key from files once.
func FileServingCert(certFile, keyFile string) (func(*tls.ClientHelloInfo) (*tls.Certificate, error), error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load --tls-cert/--tls-key: %w", err)
	}
	return func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }, nil
}
