package rotor

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net/url"
	"testing"
	"time"
)

func genKey(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	var k crypto.Signer
	var err error
	switch kind {
	case "p256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "p384":
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "rsa2048":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ed25519":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil || k == nil {
		t.Fatalf("generate %s: %v", kind, err)
	}
	return k
}

func testIssuer(t testing.TB, kind string) *Issuer {
	t.Helper()
	key := genKey(t, kind)
	cert, err := CreateCACertificate(context.Background(), CAParams{Name: "test issuer", Lifetime: time.Hour, Now: time.Now()},
		key.Public(), nil, LocalSigner{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	iss, err := NewIssuer(cert, nil, LocalSigner{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

// TestLeafMatchesCreateCertificate holds the hand-made encoding to
// x509.CreateCertificate's, byte for byte, for every issuer and subject key
// type: same TBSCertificate, and a certificate that verifies.
func TestLeafMatchesCreateCertificate(t *testing.T) {
	for _, issuerKind := range []string{"p256", "p384", "rsa2048", "ed25519"} {
		iss := testIssuer(t, issuerKind)
		for _, subjectKind := range []string{"p256", "p384", "rsa2048", "ed25519"} {
			t.Run("ok/issuer-"+issuerKind+"/subject-"+subjectKind, func(t *testing.T) {
				sub := genKey(t, subjectKind)
				spki, err := x509.MarshalPKIXPublicKey(sub.Public())
				if err != nil {
					t.Fatal(err)
				}
				ski := sha256.Sum256(spki)
				serial := new(big.Int).SetBytes(bytes.Repeat([]byte{0x5a}, 20))
				now := time.Date(2026, 11, 27, 18, 0, 0, 0, time.UTC)
				dns := "webapp.default.serviceaccount.identity.rotor.cluster.local"
				uri := "spiffe://cluster.local/ns/default/sa/webapp"
				f := leafFields{Serial: serial, CommonName: dns, DNSName: dns, URI: uri,
					NotBefore: now.Add(-20 * time.Second), NotAfter: now.Add(24 * time.Hour),
					SPKI: spki, SKI: ski[:20], RSASubject: subjectKind == "rsa2048"}
				der, err := iss.signLeaf(context.Background(), f)
				if err != nil {
					t.Fatal(err)
				}
				got, err := x509.ParseCertificate(der)
				if err != nil {
					t.Fatalf("parse our certificate: %v", err)
				}
				if err := got.CheckSignatureFrom(iss.Certificate); err != nil {
					t.Fatalf("our certificate does not verify: %v", err)
				}

				u, _ := url.Parse(uri)
				ku := x509.KeyUsageDigitalSignature
				if f.RSASubject {
					ku |= x509.KeyUsageKeyEncipherment
				}
				tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: dns},
					DNSNames: []string{dns}, URIs: []*url.URL{u}, NotBefore: f.NotBefore, NotAfter: f.NotAfter,
					KeyUsage: ku, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
					BasicConstraintsValid: true, SubjectKeyId: ski[:20]}
				wantDER, err := x509.CreateCertificate(rand.Reader, tmpl, iss.Certificate, sub.Public(), CryptoSigner(context.Background(), iss.Signer))
				if err != nil {
					t.Fatal(err)
				}
				want, _ := x509.ParseCertificate(wantDER)
				if !bytes.Equal(got.RawTBSCertificate, want.RawTBSCertificate) {
					t.Fatalf("TBSCertificate differs from x509.CreateCertificate's:\n got %x\nwant %x", got.RawTBSCertificate, want.RawTBSCertificate)
				}
			})
		}
	}
}

func TestDERLengths(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 255, 256, 65535, 65536} {
		enc := derTLV(0x04, make([]byte, n))
		var raw []byte
		if _, err := asn1.Unmarshal(enc, &raw); err != nil || len(raw) != n {
			t.Errorf("length %d: decoded %d bytes, %v", n, len(raw), err)
		}
	}
}

func TestDERTime(t *testing.T) {
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC), "\x17\x0d491231235959Z"},
		{time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC), "\x18\x0f20500101000000Z"},
	}
	for _, tt := range tests {
		if got := string(derTime(tt.t)); got != tt.want {
			t.Errorf("derTime(%v) = %q, want %q", tt.t, got, tt.want)
		}
	}
}

func BenchmarkSignLeaf(b *testing.B) {
	iss := testIssuer(b, "p256")
	sub := genKey(b, "p256")
	spki, _ := x509.MarshalPKIXPublicKey(sub.Public())
	ski := sha256.Sum256(spki)
	now := time.Now()
	dns := "webapp.default.serviceaccount.identity.rotor.cluster.local"
	f := leafFields{Serial: big.NewInt(1 << 62), CommonName: dns, DNSName: dns, URI: "spiffe://cluster.local/ns/default/sa/webapp",
		NotBefore: now, NotAfter: now.Add(time.Hour), SPKI: spki, SKI: ski[:20]}
	b.Run("rotor", func(b *testing.B) {
		for b.Loop() {
			if _, err := iss.signLeaf(context.Background(), f); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("x509.CreateCertificate", func(b *testing.B) {
		u, _ := url.Parse(f.URI)
		tmpl := &x509.Certificate{SerialNumber: f.Serial, Subject: pkix.Name{CommonName: dns}, DNSNames: []string{dns},
			URIs: []*url.URL{u}, NotBefore: f.NotBefore, NotAfter: f.NotAfter, KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, BasicConstraintsValid: true, SubjectKeyId: f.SKI}
		for b.Loop() {
			if _, err := x509.CreateCertificate(rand.Reader, tmpl, iss.Certificate, sub.Public(), CryptoSigner(context.Background(), iss.Signer)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
