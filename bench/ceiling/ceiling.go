// Package ceiling is what Rotor is measured against in the same run: a bare
// Go CA (parse and check the CSR, sign a 24 h leaf with
// x509.CreateCertificate; no authentication, no audit) and a loopback HTTPS
// no-op. Both answer POST /v1/certificates with 201, so one load generator
// drives all three. They use only the standard library: a ceiling that
// shared Rotor's code would share its costs.
package ceiling

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"time"
)

// PKI is an in-memory root and issuing CA, and the serving certificate
// the ceilings present (signed by the issuer, for 127.0.0.1).
type PKI struct {
	RootPEM   []byte
	Issuer    *x509.Certificate
	IssuerKey crypto.Signer
	Serving   tls.Certificate
}

// NewPKI makes a fresh P-256 root, issuer and serving certificate.
func NewPKI() (*PKI, error) {
	now := time.Now()
	root, rootKey, err := selfSigned("ceiling root", now)
	if err != nil {
		return nil, err
	}
	issuer, issuerKey, err := child(root, rootKey, &x509.Certificate{Subject: pkix.Name{CommonName: "ceiling issuer"},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotAfter: now.Add(24 * time.Hour)})
	if err != nil {
		return nil, err
	}
	leaf, leafKey, err := child(issuer, issuerKey, &x509.Certificate{DNSNames: []string{"localhost"},
		IPAddresses: loopbackIPs, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature, NotAfter: now.Add(24 * time.Hour)})
	if err != nil {
		return nil, err
	}
	return &PKI{RootPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}),
		Issuer: issuer, IssuerKey: issuerKey,
		Serving: tls.Certificate{Certificate: [][]byte{leaf.Raw, issuer.Raw}, PrivateKey: leafKey, Leaf: leaf}}, nil
}

// selfSigned makes a root CA certificate and its key.
func selfSigned(name string, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("ceiling: %w", err)
	}
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, SerialNumber: big.NewInt(1), NotBefore: now.Add(-time.Minute),
		NotAfter: now.Add(48 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("ceiling: root: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// child signs tmpl for a fresh key with parent.
func child(parent *x509.Certificate, parentKey crypto.Signer, tmpl *x509.Certificate) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("ceiling: %w", err)
	}
	if tmpl.SerialNumber, err = randSerial(); err != nil {
		return nil, nil, err
	}
	tmpl.NotBefore = time.Now().Add(-time.Minute)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, nil, fmt.Errorf("ceiling: sign %v: %w", tmpl.Subject, err)
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// randSerial is a random positive 128-bit serial number.
func randSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("ceiling: serial: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// issueBody is the request both ceilings read, Rotor's JSON form.
type issueBody struct {
	CSR string `json:"csr"`
}

// issued is the bare CA's answer, the fields of Rotor's that a client
// needs.
type issued struct {
	Serial      string `json:"serial"`
	Certificate string `json:"certificate"`
	Chain       string `json:"chain"`
}

// Noop reads the request body and answers 201 with a small JSON body:
// the cost of TLS, HTTP and the load generator alone.
func Noop() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 64<<10))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"serial":"00"}`))
	})
}
