package api_test

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"testing"

	"github.com/rotor-dev/rotor"
)

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
	issuer := e.pki.Trust.Issuer.Certificate
	if len(chain) != 1 || !chain[0].Equal(issuer) {
		t.Errorf("chain is %d certificates, want the issuer alone", len(chain))
	}
	inter := x509.NewCertPool()
	for _, c := range chain {
		inter.AddCert(c)
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: e.pki.Trust.Bundle.Pool(), Intermediates: inter,
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
