package load

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
)

// ClientCertificate gets a certificate from the CA at url with token and
// returns it with its key as a TLS client presents it, for runs that
// authenticate over mTLS as renewing agents do.
func ClientCertificate(ctx context.Context, url string, roots *x509.CertPool, token string) (*tls.Certificate, error) {
	cl, err := client.New(client.Config{URL: url, Roots: roots})
	if err != nil {
		return nil, err
	}
	defer cl.CloseIdleConnections()
	key, csr, err := NewKeyCSR()
	if err != nil {
		return nil, err
	}
	got, err := cl.Issue(ctx, client.IssueRequest{CSR: csr, Token: token})
	if err != nil {
		return nil, fmt.Errorf("load: first certificate by token: %w", err)
	}
	return KeyPair(got, key), nil
}

// KeyPair is an issued certificate with its key as a TLS client presents
// it: the leaf, then the chain.
func KeyPair(got *client.Issued, key any) *tls.Certificate {
	cert := &tls.Certificate{PrivateKey: key, Leaf: got.Leaf}
	for _, c := range append([]*x509.Certificate{got.Leaf}, got.Chain...) {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	return cert
}

// ReadRoots reads the PEM roots that verify a CA (its root.crt).
func ReadRoots(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	certs, err := rotor.ParseCertificates(b)
	if err != nil {
		return nil, fmt.Errorf("load: roots %s: %w", path, err)
	}
	bundle, err := rotor.NewBundle(certs)
	if err != nil {
		return nil, fmt.Errorf("load: roots %s: %w", path, err)
	}
	return bundle.Pool(), nil
}
