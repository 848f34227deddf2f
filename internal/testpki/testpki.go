// Package testpki makes the keys, CSRs and CAs that tests need, one way for
// the whole module: a root and an issuer under it, keys of every kind the
// CA accepts and of the kinds it must refuse, CSRs for them, and a serving
// certificate. It is for tests only.
package testpki

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
)

// Key makes a key of one kind: a rotor.KeyType, or one of the kinds a CA
// must refuse: "ecdsa-p224", "ecdsa-p521", "rsa-1024".
func Key(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	var (
		k   crypto.Signer
		err error
	)
	switch kind {
	case "ecdsa-p224":
		k, err = ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	case "ecdsa-p521":
		k, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "rsa-1024":
		k, err = rsa.GenerateKey(rand.Reader, 1024)
	default:
		k, err = rotor.GenerateKey(rotor.KeyType(kind), nil)
	}
	if err != nil {
		t.Fatalf("generate %s key: %v", kind, err)
	}
	return k
}

// CSR makes a DER CSR for key from tmpl (nil: an empty subject, which lets
// the CA fill in every name). A P-224 key, which crypto/x509 will not sign
// with, gets a request built by hand, so that the CA, not the test's
// toolchain, refuses the curve.
func CSR(t testing.TB, key crypto.Signer, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	if tmpl == nil {
		tmpl = &x509.CertificateRequest{}
	}
	if ec, ok := key.(*ecdsa.PrivateKey); ok && ec.Curve == elliptic.P224() {
		return p224CSR(t, ec)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatalf("create CSR: %v", err)
	}
	return der
}

// p224CSR assembles a minimal, correctly self-signed PKCS#10 request.
func p224CSR(t testing.TB, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := asn1.Marshal(pkix.Name{}.ToRDNSequence())
	info, err := asn1.Marshal(struct {
		Version    int
		Subject    asn1.RawValue
		PublicKey  asn1.RawValue
		Attributes []asn1.RawValue `asn1:"tag:0"`
	}{0, asn1.RawValue{FullBytes: subject}, asn1.RawValue{FullBytes: spki}, []asn1.RawValue{}})
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(info)
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	der, err := asn1.Marshal(struct {
		Info      asn1.RawValue
		Algorithm pkix.AlgorithmIdentifier
		Signature asn1.BitString
	}{asn1.RawValue{FullBytes: info}, pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}},
		asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// Options shape a PKI; the zero value is a P-256 root and issuer valid for
// thirty days, so a test's 24h leaf is never cut to the issuer's expiry by
// the second that passes between making the PKI and issuing.
type Options struct {
	// Name starts the CAs' common names; empty means "Test".
	Name string
	// KeyType is the kind of both CA keys; empty means ECDSA P-256.
	KeyType rotor.KeyType
	// Lifetime of both CAs; zero means 30 days.
	Lifetime time.Duration
	// Signer wraps the issuer's key as the issuer's signer (the metrics
	// and the monitor, as the CA's wiring does); nil means
	// rotor.LocalSigner.
	Signer func(crypto.Signer) rotor.Signer
	// Now is when the CAs start; zero means now.
	Now time.Time
}

// PKI is a root and an issuer under it, made for one test.
type PKI struct {
	Root      *x509.Certificate
	RootKey   crypto.Signer
	IssuerKey crypto.Signer
	Issuer    *rotor.Issuer
	Bundle    *rotor.Bundle // the root alone
	Trust     *rotor.Trust
}

// New makes a PKI or fails the test.
func New(t testing.TB, o Options) *PKI {
	t.Helper()
	if o.Name == "" {
		o.Name = "Test"
	}
	if o.Lifetime == 0 {
		o.Lifetime = 30 * 24 * time.Hour
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Signer == nil {
		o.Signer = func(k crypto.Signer) rotor.Signer { return rotor.LocalSigner{Key: k} }
	}
	kt := o.KeyType
	if kt == "" {
		kt = rotor.ECDSAP256
	}
	p := &PKI{}
	p.Root, p.RootKey = Root(t, o.Name+" Root", kt, o.Lifetime, o.Now)
	p.IssuerKey = Key(t, string(kt))
	issuerCert, err := rotor.CreateCACertificate(context.Background(), rotor.CAParams{Name: o.Name + " Issuer",
		Lifetime: o.Lifetime, Now: o.Now}, p.IssuerKey.Public(), p.Root, rotor.LocalSigner{Key: p.RootKey})
	if err != nil {
		t.Fatal(err)
	}
	if p.Issuer, err = rotor.NewIssuer(issuerCert, nil, o.Signer(p.IssuerKey)); err != nil {
		t.Fatal(err)
	}
	if p.Bundle, err = rotor.NewBundle([]*x509.Certificate{p.Root}); err != nil {
		t.Fatal(err)
	}
	if p.Trust, err = rotor.NewTrust(p.Issuer, p.Bundle, o.Now); err != nil {
		t.Fatal(err)
	}
	return p
}

// Root makes a self-signed root CA certificate with a fresh key of kind kt.
func Root(t testing.TB, name string, kt rotor.KeyType, lifetime time.Duration, now time.Time) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key := Key(t, string(kt))
	cert, err := rotor.CreateCACertificate(context.Background(), rotor.CAParams{Name: name, Lifetime: lifetime,
		PathLen: 1, Now: now}, key.Public(), nil, rotor.LocalSigner{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// ServingCert issues a TLS server certificate for localhost and 127.0.0.1
// from the issuer's key, as rotor-ca serve does for itself, with the chain
// up to (not including) the root.
func (p *PKI) ServingCert(t testing.TB) tls.Certificate {
	t.Helper()
	key := Key(t, string(rotor.ECDSAP256))
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     p.Issuer.Certificate.NotAfter,
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.Issuer.Certificate, key.Public(), p.IssuerKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der, p.Issuer.Certificate.Raw}, PrivateKey: key, Leaf: leaf}
}
