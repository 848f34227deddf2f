package api_test

import (
	"bytes"
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
	"encoding/json"
	"encoding/pem"
	"testing"

	"github.com/rotor-dev/rotor"
)

// newKey makes a key of the named kind.
func newKey(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	var k crypto.Signer
	var err error
	switch kind {
	case "ecdsa-p256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ecdsa-p384":
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ecdsa-p224":
		k, err = ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	case "ed25519":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	case "rsa-2048":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "rsa-1024":
		k, err = rsa.GenerateKey(rand.Reader, 1024)
	default:
		t.Fatalf("unknown key kind %q", kind)
	}
	if err != nil {
		t.Fatalf("generate %s key: %v", kind, err)
	}
	return k
}

// newCSR makes a DER CSR for key from tmpl (nil: an empty subject, which
// lets the CA fill in every name).
func newCSR(t testing.TB, key crypto.Signer, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	if tmpl == nil {
		tmpl = &x509.CertificateRequest{}
	}
	if ec, ok := key.(*ecdsa.PrivateKey); ok && ec.Curve == elliptic.P224() {
		// crypto/x509 will not sign with P-224; build the request by hand
		// so the CA, not the test's toolchain, gets to refuse the curve.
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

func csrPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// jsonBody is the JSON issue request for a DER CSR.
func jsonBody(t testing.TB, der []byte, ttl string) []byte {
	t.Helper()
	req := map[string]string{"csr": string(csrPEM(der))}
	if ttl != "" {
		req["ttl"] = ttl
	}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkIssued decodes a 201 body and holds the leaf to everything the CA
// promises: it chains to the bundle for client and server auth, names
// exactly the caller, carries the requested key, a serial of at least 128
// bits and key identifiers linking it to the issuer.
func checkIssued(t testing.TB, e *env, body []byte, key crypto.Signer, id rotor.Identity) (*rotor.IssuedCertificate, *x509.Certificate) {
	t.Helper()
	var out rotor.IssuedCertificate
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("decode issued certificate: %v", err)
	}
	certs, err := rotor.ParseCertificates([]byte(out.Certificate))
	if err != nil || len(certs) != 1 {
		t.Fatalf("certificate field: %d certificates, %v", len(certs), err)
	}
	leaf := certs[0]
	chain, err := rotor.ParseCertificates([]byte(out.Chain))
	if err != nil {
		t.Fatalf("chain field: %v", err)
	}
	issuer := e.pki.trust.Issuer.Certificate
	if len(chain) != 1 || !chain[0].Equal(issuer) {
		t.Errorf("chain is %d certificates, want the issuer alone", len(chain))
	}
	inter := x509.NewCertPool()
	for _, c := range chain {
		inter.AddCert(c)
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: e.pki.trust.Bundle.Pool(), Intermediates: inter,
			KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("leaf does not verify for %v: %v", usage, err)
		}
	}
	dns, uri := id.DNSName(trustDomain), id.SPIFFEID(trustDomain).String()
	if out.Identity != dns || out.SPIFFEID != uri {
		t.Errorf("identity %q spiffe_id %q, want %q %q", out.Identity, out.SPIFFEID, dns, uri)
	}
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != dns || len(leaf.URIs) != 1 || leaf.URIs[0].String() != uri ||
		leaf.Subject.CommonName != dns || len(leaf.IPAddresses)+len(leaf.EmailAddresses) != 0 {
		t.Errorf("names: CN %q DNS %v URI %v IP %v email %v", leaf.Subject.CommonName, leaf.DNSNames, leaf.URIs,
			leaf.IPAddresses, leaf.EmailAddresses)
	}
	wantKU := x509.KeyUsageDigitalSignature
	if _, ok := key.Public().(*rsa.PublicKey); ok {
		wantKU |= x509.KeyUsageKeyEncipherment
	}
	if leaf.KeyUsage != wantKU || leaf.IsCA || !leaf.BasicConstraintsValid {
		t.Errorf("key usage %b (want %b), CA %v, basic constraints %v", leaf.KeyUsage, wantKU, leaf.IsCA,
			leaf.BasicConstraintsValid)
	}
	if len(leaf.ExtKeyUsage) != 2 || !hasEKU(leaf, x509.ExtKeyUsageServerAuth) || !hasEKU(leaf, x509.ExtKeyUsageClientAuth) {
		t.Errorf("extended key usage %v, want serverAuth and clientAuth", leaf.ExtKeyUsage)
	}
	if leaf.SerialNumber.BitLen() < 128 || leaf.SerialNumber.Text(16) != out.Serial {
		t.Errorf("serial %x (%d bits), response serial %s", leaf.SerialNumber, leaf.SerialNumber.BitLen(), out.Serial)
	}
	if len(leaf.SubjectKeyId) == 0 || !bytes.Equal(leaf.AuthorityKeyId, issuer.SubjectKeyId) {
		t.Errorf("SKI %x, AKI %x, issuer SKI %x", leaf.SubjectKeyId, leaf.AuthorityKeyId, issuer.SubjectKeyId)
	}
	if pub, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(key.Public()) {
		t.Errorf("leaf public key is not the CSR's")
	}
	if !out.NotBefore.Equal(leaf.NotBefore) || !out.NotAfter.Equal(leaf.NotAfter) ||
		!out.RenewAfter.After(leaf.NotBefore) || !out.RenewAfter.Before(leaf.NotAfter) {
		t.Errorf("times: response %v..%v renew %v, leaf %v..%v", out.NotBefore, out.NotAfter, out.RenewAfter,
			leaf.NotBefore, leaf.NotAfter)
	}
	return &out, leaf
}

func hasEKU(c *x509.Certificate, u x509.ExtKeyUsage) bool {
	for _, v := range c.ExtKeyUsage {
		if v == u {
			return true
		}
	}
	return false
}
