package rotor

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"time"
)

// CAParams describes a CA certificate to create: a root (Parent nil) or an
// issuer signed by Parent's key.
type CAParams struct {
	Name     string // subject common name
	Lifetime time.Duration
	// PathLen limits the CAs below: 0 for an issuer that signs leaves only.
	PathLen int
	Now     time.Time
	Rand    io.Reader
}

// CreateCACertificate makes a CA certificate for pub, signed by signer. With
// parent nil it is self-signed (a root) and signer must hold pub's key.
func CreateCACertificate(ctx context.Context, p CAParams, pub crypto.PublicKey, parent *x509.Certificate, signer Signer) (*x509.Certificate, error) {
	if p.Rand == nil {
		p.Rand = rand.Reader
	}
	serialBytes := make([]byte, 20)
	if _, err := io.ReadFull(p.Rand, serialBytes); err != nil {
		return nil, fmt.Errorf("ca certificate serial: %w", err)
	}
	serialBytes[0] &= 0x7f
	serialBytes[0] |= 0x40
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("ca certificate %q: marshal public key: %w", p.Name, err)
	}
	ski := sha256.Sum256(spki)
	now := p.Now.UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          new(big.Int).SetBytes(serialBytes),
		Subject:               pkix.Name{CommonName: p.Name, Organization: []string{"Rotor"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(p.Lifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            p.PathLen,
		MaxPathLenZero:        p.PathLen == 0,
		SubjectKeyId:          ski[:20],
	}
	if parent == nil {
		parent = tmpl
	} else if tmpl.NotAfter.After(parent.NotAfter) {
		tmpl.NotAfter = parent.NotAfter
	}
	der, err := x509.CreateCertificate(p.Rand, tmpl, parent, pub, CryptoSigner(ctx, signer))
	if err != nil {
		return nil, fmt.Errorf("create ca certificate %q: %w", p.Name, err)
	}
	return x509.ParseCertificate(der)
}
