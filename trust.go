package rotor

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"time"
)

// Issuer is an issuing CA: its certificate, the chain sent with each leaf and
// the key that signs. It is immutable; rotation swaps in a new one.
type Issuer struct {
	Certificate *x509.Certificate
	// Chain is sent after each leaf: Certificate, then any intermediates
	// above it, never the root.
	Chain  []*x509.Certificate
	Signer Signer
	// KeyID is Certificate's subject key ID in hex, recorded with each
	// issuance so operators can tell which issuer signed what.
	KeyID string
	// ChainPEM is Chain encoded once, as every response sends it.
	ChainPEM []byte
	scheme   sigScheme
}

// NewIssuer checks that cert is a CA certificate whose public key is the
// signer's and builds the Issuer. intermediates are the certificates between
// cert and the root, nearest first.
func NewIssuer(cert *x509.Certificate, intermediates []*x509.Certificate, signer Signer) (*Issuer, error) {
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("issuer certificate %q is not a CA certificate with keyCertSign", cert.Subject)
	}
	if !SamePublicKey(signer.Public(), cert.PublicKey) {
		return nil, fmt.Errorf("issuer certificate %q does not match the signer's public key", cert.Subject)
	}
	if len(cert.SubjectKeyId) == 0 {
		return nil, fmt.Errorf("issuer certificate %q has no subject key identifier", cert.Subject)
	}
	scheme, err := schemeFor(cert.PublicKey)
	if err != nil {
		return nil, err
	}
	chain := append([]*x509.Certificate{cert}, intermediates...)
	return &Issuer{Certificate: cert, Chain: chain, Signer: signer,
		KeyID: hex.EncodeToString(cert.SubjectKeyId), ChainPEM: EncodeCertificates(chain), scheme: scheme}, nil
}

// Bundle is the set of trust anchors served to workloads. It may hold several
// roots while a root rotation is under way.
type Bundle struct {
	Roots []*x509.Certificate
	// PEM is the roots encoded once, in a stable order.
	PEM []byte
	// Fingerprint is the lowercase hex SHA-256 over the sorted roots' DER: the
	// same set of roots always gives the same fingerprint. It is the ETag of
	// GET /v1/bundle and what agents report back.
	Fingerprint string
	pool        *x509.CertPool
}

// NewBundle builds a bundle from self-signed CA certificates.
func NewBundle(roots []*x509.Certificate) (*Bundle, error) {
	if len(roots) == 0 {
		return nil, fmt.Errorf("trust bundle is empty")
	}
	sorted := append([]*x509.Certificate(nil), roots...)
	sort.Slice(sorted, func(i, j int) bool { return bytes.Compare(sorted[i].Raw, sorted[j].Raw) < 0 })
	h := sha256.New()
	pool := x509.NewCertPool()
	for _, r := range sorted {
		if !r.IsCA {
			return nil, fmt.Errorf("trust bundle certificate %q is not a CA", r.Subject)
		}
		h.Write(r.Raw)
		pool.AddCert(r)
	}
	return &Bundle{Roots: sorted, PEM: EncodeCertificates(sorted),
		Fingerprint: hex.EncodeToString(h.Sum(nil)), pool: pool}, nil
}

// Sequence is the bundle's spiffe_sequence in the SPIFFE bundle format
// (GET /v1/spiffe-bundle): the newest root's NotBefore in Unix seconds,
// times 1000, plus 1000 less the number of roots (at most 999 count).
//
// It is a function of the roots alone, so every replica serving the same
// bundle file, and every restart, gives the same bundle the same number
// without a counter to share or keep. And it grows at every step of a root
// rotation: adding a new root raises the newest NotBefore; retiring an old
// one leaves that and lowers the count. The roots are the rotation state
// that persists; a counter kept per process would differ between replicas
// and start over at every restart, and one kept in the store would make
// the public bundle depend on the store being up. What it cannot do is
// grow when a rotation is rolled back (A+B back to A): a function of the
// bundle gives A its old number again, and federated peers fetching it
// see the sequence go down, which is the truth of what happened. Neither
// does it grow when the root added is not newer than all of the bundle's
// by a second at least (X.509 times count seconds), which a new root made
// for a rotation is.
func (b *Bundle) Sequence() uint64 {
	var newest int64
	for _, r := range b.Roots {
		newest = max(newest, r.NotBefore.Unix())
	}
	return uint64(newest)*1000 + uint64(1000-min(len(b.Roots), 999))
}

// Pool returns the roots as a pool for verification. Callers must not
// modify it.
func (b *Bundle) Pool() *x509.CertPool { return b.pool }

// Holds reports whether fp (lowercase hex, see ParseFingerprint) is b's
// fingerprint or that of one of its roots.
func (b *Bundle) Holds(fp string) bool {
	if b.Fingerprint == fp {
		return true
	}
	for _, r := range b.Roots {
		if Fingerprint(r.Raw) == fp {
			return true
		}
	}
	return false
}

// Fingerprint is the SHA-256 of a certificate's DER in lowercase hex: the
// form roots are pinned, recorded and reported in. For a one-root bundle it
// equals the bundle's fingerprint.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// ParseFingerprint normalises a SHA-256 fingerprint as operators paste it
// (upper case, colons, "sha256:" or "SHA256=" prefixes, as openssl prints
// it) to lowercase hex. Anything else is EInvalid.
func ParseFingerprint(s string) (string, error) {
	f := strings.ToLower(strings.TrimSpace(s))
	for _, p := range []string{"sha256:", "sha256=", "sha256 fingerprint="} {
		f = strings.TrimPrefix(f, p)
	}
	f = strings.ReplaceAll(f, ":", "")
	if !IsLowerHex(f, 2*sha256.Size, 2*sha256.Size) {
		return "", Errorf(EInvalid, "fingerprint %q is not a SHA-256 in hex", s)
	}
	return f, nil
}

// Trust is what the CA signs with and what it tells workloads to trust,
// swapped as one on rotation.
type Trust struct {
	Issuer *Issuer
	Bundle *Bundle
}

// NewTrust checks that the issuer chains to a root in the bundle.
func NewTrust(iss *Issuer, b *Bundle, now time.Time) (*Trust, error) {
	inter := x509.NewCertPool()
	for _, c := range iss.Chain[1:] {
		inter.AddCert(c)
	}
	_, err := iss.Certificate.Verify(x509.VerifyOptions{Roots: b.Pool(), Intermediates: inter,
		CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return nil, fmt.Errorf("issuer %q does not chain to the trust bundle: %w", iss.Certificate.Subject, err)
	}
	return &Trust{Issuer: iss, Bundle: b}, nil
}

// VerifyLeaf verifies a leaf presented with its chain against the bundle, for
// client authentication.
func (t *Trust) VerifyLeaf(chain []*x509.Certificate, now time.Time) error {
	if len(chain) == 0 {
		return fmt.Errorf("no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: t.Bundle.Pool(), Intermediates: inter,
		CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return err
}

// TrustSource gives the current trust. Safe for concurrent use.
type TrustSource interface {
	Trust() *Trust
}

// EncodeCertificates PEM-encodes certificates in order.
func EncodeCertificates(certs []*x509.Certificate) []byte {
	var buf bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return buf.Bytes()
}

// ParseCertificates parses every CERTIFICATE block of a PEM document.
func ParseCertificates(pemBytes []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, pemBytes = pem.Decode(pemBytes)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("no CERTIFICATE block found")
	}
	return certs, nil
}

// TrustHolder is a TrustSource whose trust can be replaced while requests
// are in flight: each request reads the pointer once and finishes with the
// issuer it read.
type TrustHolder struct {
	p atomic.Pointer[Trust]
}

// NewTrustHolder holds t.
func NewTrustHolder(t *Trust) *TrustHolder {
	h := &TrustHolder{}
	h.p.Store(t)
	return h
}

// Trust implements TrustSource.
func (h *TrustHolder) Trust() *Trust { return h.p.Load() }

// Set replaces the trust for requests that start from now on.
func (h *TrustHolder) Set(t *Trust) { h.p.Store(t) }
