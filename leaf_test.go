package rotor

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// genKey makes a key of a kind the leaf encoder signs for.
func genKey(t testing.TB, kind KeyType) crypto.Signer {
	t.Helper()
	k, err := GenerateKey(kind, nil)
	if err != nil {
		t.Fatalf("generate %s: %v", kind, err)
	}
	return k
}

func testIssuer(t testing.TB, kind KeyType) *Issuer {
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
// type, with and without a CRL distribution point: same TBSCertificate, and
// a certificate that verifies.
func TestLeafMatchesCreateCertificate(t *testing.T) {
	kinds := []KeyType{ECDSAP256, ECDSAP384, RSA2048, Ed25519}
	for _, issuerKind := range kinds {
		iss := testIssuer(t, issuerKind)
		for _, subjectKind := range kinds {
			for i, dp := range []string{"", "https://ca.example.com/v1/crl/" + iss.KeyID, ""} {
				name := "ok/issuer-" + string(issuerKind) + "/subject-" + string(subjectKind)
				uri := "spiffe://cluster.local/ns/default/sa/webapp"
				switch {
				case dp != "":
					name += "/crl-distribution-point"
				case i == 2:
					name, uri = name+"/no-uri", "" // Linkerd's naming
				}
				t.Run(name, func(t *testing.T) {
					sub := genKey(t, subjectKind)
					spki, err := x509.MarshalPKIXPublicKey(sub.Public())
					if err != nil {
						t.Fatal(err)
					}
					ski := sha256.Sum256(spki)
					serial := new(big.Int).SetBytes(bytes.Repeat([]byte{0x5a}, 20))
					now := time.Date(2026, 11, 27, 18, 0, 0, 0, time.UTC)
					dns := "webapp.default.serviceaccount.identity.rotor.cluster.local"
					f := leafFields{Serial: serial, CommonName: dns, DNSName: dns, URI: uri,
						NotBefore: now.Add(-20 * time.Second), NotAfter: now.Add(24 * time.Hour),
						SPKI: spki, SKI: ski[:20], RSASubject: subjectKind == RSA2048, CRLDistributionPoint: dp}
					checkLeafEncoding(t, iss, sub.Public(), f)
				})
			}
		}
	}
}

// checkLeafEncoding signs a leaf with fields f and holds it to what f says
// and to x509.CreateCertificate's TBSCertificate from the same template.
func checkLeafEncoding(t *testing.T, iss *Issuer, pub crypto.PublicKey, f leafFields) {
	t.Helper()
	der, err := iss.signLeaf(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	got, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("our certificate does not parse: %v", err)
	}
	var dps []string
	if f.CRLDistributionPoint != "" {
		dps = []string{f.CRLDistributionPoint}
	}
	var uris []*url.URL
	if f.URI != "" {
		u, err := url.Parse(f.URI)
		if err != nil {
			t.Fatal(err)
		}
		uris = []*url.URL{u}
	}
	gotURIs := make([]string, len(got.URIs))
	for i, u := range got.URIs {
		gotURIs[i] = u.String()
	}
	if got.SerialNumber.Cmp(f.Serial) != 0 || !got.NotBefore.Equal(f.NotBefore) || !got.NotAfter.Equal(f.NotAfter) ||
		len(got.DNSNames) != 1 || got.DNSNames[0] != f.DNSName || strings.Join(gotURIs, " ") != f.URI ||
		!slices.Equal(got.CRLDistributionPoints, dps) {
		t.Fatalf("certificate says serial %v, %v-%v, %v %v, CRL %v", got.SerialNumber, got.NotBefore, got.NotAfter,
			got.DNSNames, got.URIs, got.CRLDistributionPoints)
	}
	ku := x509.KeyUsageDigitalSignature
	if f.RSASubject {
		ku |= x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{SerialNumber: f.Serial, Subject: pkix.Name{CommonName: f.CommonName},
		DNSNames: []string{f.DNSName}, URIs: uris, NotBefore: f.NotBefore, NotAfter: f.NotAfter,
		KeyUsage: ku, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true, SubjectKeyId: f.SKI, CRLDistributionPoints: dps}
	wantDER, err := x509.CreateCertificate(rand.Reader, tmpl, iss.Certificate, pub, CryptoSigner(context.Background(), iss.Signer))
	if err != nil {
		t.Fatalf("x509.CreateCertificate refuses what we encoded: %v", err)
	}
	want, _ := x509.ParseCertificate(wantDER)
	if !bytes.Equal(got.RawTBSCertificate, want.RawTBSCertificate) {
		t.Fatalf("TBSCertificate differs from x509.CreateCertificate's:\n got %x\nwant %x", got.RawTBSCertificate, want.RawTBSCertificate)
	}
	if err := got.CheckSignatureFrom(iss.Certificate); err != nil {
		t.Fatalf("our certificate does not verify: %v", err)
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
	iss := testIssuer(b, ECDSAP256)
	sub := genKey(b, ECDSAP256)
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

// FuzzLeafEncoder holds the hand-made encoder to crypto/x509 for any
// identity, serial, validity and key pairing the CA can produce, with and
// without a CRL distribution point: every certificate it makes parses, says
// what it was given, and has exactly the TBSCertificate
// x509.CreateCertificate makes from the same template.
func FuzzLeafEncoder(f *testing.F) {
	kinds := []KeyType{ECDSAP256, ECDSAP384, RSA2048, Ed25519}
	issuers := make([]*Issuer, len(kinds))
	subjects := make([]crypto.Signer, len(kinds))
	for i, k := range kinds {
		issuers[i], subjects[i] = testIssuer(f, k), genKey(f, k)
	}
	f.Add("default", "webapp", "cluster.local", []byte{0x5a, 0x01}, int64(1795000000), uint32(86400), uint8(0), uint8(0))
	f.Add("kube-system", "a.b-c", "example.org", []byte{0xff, 0xff}, int64(-631152000), uint32(1), uint8(2), uint8(3))
	f.Add("n", "s", "td", []byte{0}, int64(2524608000), uint32(4000000000), uint8(3), uint8(1))
	f.Fuzz(func(t *testing.T, ns, sa, td string, serialBytes []byte, notBefore int64, life uint32, issuerIdx, subjectIdx uint8) {
		id := Identity{Namespace: ns, ServiceAccount: sa}
		if id.Validate() != nil || ValidateTrustDomain(td) != nil || len(serialBytes) == 0 || len(serialBytes) > 20 {
			return
		}
		serial := new(big.Int).SetBytes(serialBytes)
		nb := time.Unix(notBefore, 0).UTC()
		na := nb.Add(time.Duration(life) * time.Second)
		if serial.Sign() == 0 || nb.Year() < 1 || na.Year() > 9999 {
			return
		}
		iss, sub := issuers[int(issuerIdx)%len(issuers)], subjects[int(subjectIdx)%len(subjects)]
		spki, err := x509.MarshalPKIXPublicKey(sub.Public())
		if err != nil {
			t.Fatal(err)
		}
		ski := sha256.Sum256(spki)
		dns, uri := id.DNSName(td), id.SPIFFEID(td)
		_, rsaSubject := sub.Public().(*rsa.PublicKey)
		// The trust domain, a DNS name of up to 253 octets, stands in for
		// the CRL's host: distribution points short and long.
		crl := Policy{CRLURL: "https://" + td + "/v1/crl"}
		for _, dp := range []string{"", crl.CRLDistributionPoint(iss.KeyID)} {
			checkLeafEncoding(t, iss, sub.Public(), leafFields{Serial: serial, CommonName: dns, DNSName: dns,
				URI: uri.String(), NotBefore: nb, NotAfter: na, SPKI: spki, SKI: ski[:20], RSASubject: rsaSubject,
				CRLDistributionPoint: dp})
		}
	})
}
