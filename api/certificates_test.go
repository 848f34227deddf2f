package api_test

import (
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/testpki"
)

// TestIssueOverTLS issues with every body form the contract allows, then
// reads the audit record back and renews over mTLS with no token.
func TestIssueOverTLS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sqliteURL(t), envConfig{})
	key := testpki.Key(t, "ecdsa-p256")
	der := testpki.CSR(t, key, nil)
	fp := e.pki.Trust.Bundle.Fingerprint
	bodies := []struct {
		name, contentType string
		body              []byte
	}{
		{"ok/json", "application/json", jsonBody(t, der, "12h")},
		{"ok/pkcs10-pem", "application/pkcs10", csrPEM(der)},
		{"ok/pkcs10-der", "application/pkcs10", der},
	}
	var last *rotor.IssuedCertificate
	for _, b := range bodies {
		t.Run(b.name, func(t *testing.T) {
			h := bearer(e.token)
			h.Set("Content-Type", b.contentType)
			h.Set("Rotor-Bundle-Fingerprint", fp)
			r := e.do(t, call{Method: http.MethodPost, Path: "/v1/certificates", Header: h, Body: b.body})
			if r.Status != http.StatusCreated {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			out, leaf := checkIssued(t, e, r.Body, key, webapp)
			// The JSON body asks for 12h, the others get the default 24h;
			// NotBefore is backdated by the policy's one-minute skew.
			want := 24*time.Hour + time.Minute
			if b.contentType == "application/json" {
				want = 12*time.Hour + time.Minute
			}
			if got := leaf.NotAfter.Sub(leaf.NotBefore); got != want {
				t.Errorf("lifetime %v, want %v", got, want)
			}
			if loc := r.Header.Get("Location"); loc != "/v1/certificates/"+out.Serial {
				t.Errorf("Location %q", loc)
			}
			last = out
		})
	}
	if last == nil {
		t.Fatal("nothing issued")
	}

	t.Run("ok/pem-answer", func(t *testing.T) {
		h := withType(bearer(e.token), "application/pkcs10")
		h.Set("Accept", "application/pem-certificate-chain")
		r := e.do(t, call{Method: http.MethodPost, Path: "/v1/certificates", Header: h, Body: der})
		if r.Status != http.StatusCreated || r.Header.Get("Content-Type") != "application/pem-certificate-chain" {
			t.Fatalf("status %d, type %q: %s", r.Status, r.Header.Get("Content-Type"), r.Body)
		}
		certs, err := rotor.ParseCertificates(r.Body)
		if err != nil || len(certs) != 2 {
			t.Fatalf("PEM answer holds %d certificates (%v), want leaf and issuer", len(certs), err)
		}
		inter := x509.NewCertPool()
		inter.AddCert(certs[1])
		if _, err := certs[0].Verify(x509.VerifyOptions{Roots: e.pki.Trust.Bundle.Pool(), Intermediates: inter,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("PEM chain does not verify: %v", err)
		}
	})

	t.Run("ok/record", func(t *testing.T) {
		r := e.do(t, call{Method: http.MethodGet, Path: "/v1/certificates/" + last.Serial, Header: bearer(e.token)})
		if r.Status != http.StatusOK {
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
		var rec rotor.CertificateRecord
		if err := json.Unmarshal(r.Body, &rec); err != nil {
			t.Fatal(err)
		}
		want := rotor.CertificateRecord{Serial: last.Serial, Identity: last.Identity, Namespace: "default",
			ServiceAccount: "webapp", SANs: []string{last.Identity, last.SPIFFEID}, KeyAlgorithm: "ECDSA",
			KeySize: 256, PublicKeySHA256: rec.PublicKeySHA256, CSRSHA256: rec.CSRSHA256,
			NotBefore: last.NotBefore, NotAfter: last.NotAfter, IssuedAt: rec.IssuedAt, RenewAfter: last.RenewAfter,
			IssuerKeyID: e.pki.Trust.Issuer.KeyID, Authenticator: "token", TokenSubject: rec.TokenSubject,
			RemoteAddr: rec.RemoteAddr, BundleFingerprint: fp, Credential: rec.TokenSubject, Certificate: last.Certificate}
		if !reflect.DeepEqual(rec, want) {
			t.Errorf("record\n got %+v\nwant %+v", rec, want)
		}
		if !strings.HasPrefix(rec.TokenSubject, "token:") || !strings.HasPrefix(rec.RemoteAddr, "127.0.0.1:") ||
			len(rec.PublicKeySHA256) != 64 || len(rec.CSRSHA256) != 64 {
			t.Errorf("token_subject %q remote_addr %q key hash %q CSR hash %q", rec.TokenSubject, rec.RemoteAddr,
				rec.PublicKeySHA256, rec.CSRSHA256)
		}
	})

	t.Run("ok/renew-by-mtls", func(t *testing.T) {
		leafPEM := []byte(last.Certificate + last.Chain)
		cert, err := tls.X509KeyPair(leafPEM, pemKey(t, key))
		if err != nil {
			t.Fatal(err)
		}
		newKey := testpki.Key(t, "ecdsa-p256")
		r := e.do(t, call{Method: http.MethodPost, Path: "/v1/certificates", Client: e.client(&cert),
			Header: http.Header{"Content-Type": {"application/pkcs10"}}, Body: testpki.CSR(t, newKey, nil)})
		if r.Status != http.StatusCreated {
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
		out, _ := checkIssued(t, e, r.Body, newKey, webapp)
		// The workload reads its own record with its certificate.
		rec := e.do(t, call{Method: http.MethodGet, Path: "/v1/certificates/" + out.Serial, Client: e.client(&cert)})
		if !strings.Contains(string(rec.Body), `"authenticator":"mtls"`) {
			t.Errorf("renewal record: %s", rec.Body)
		}
	})

	t.Run("ok/foreign-client-cert-falls-back-to-token", func(t *testing.T) {
		// A certificate from a root the CA does not trust (a retired one)
		// must not fail the handshake: the token still gets its answer.
		foreign := foreignLeaf(t, webapp)
		r := e.do(t, call{Method: http.MethodPost, Path: "/v1/certificates", Client: e.client(&foreign),
			Header: withType(bearer(e.token), "application/pkcs10"), Body: der})
		if r.Status != http.StatusCreated {
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
	})

	t.Run("ok/unknown-serial", func(t *testing.T) {
		r := e.do(t, call{Method: http.MethodGet, Path: "/v1/certificates/" + strings.Repeat("ab", 20), Header: bearer(e.admin)})
		if p := r.problem(t); r.Status != http.StatusNotFound || p.Type != rotor.ENotFound.ProblemType() {
			t.Errorf("status %d type %s", r.Status, p.Type)
		}
	})

	t.Run("ok/upper-case-serial", func(t *testing.T) {
		// openssl x509 -serial prints upper case; the answer is lower case.
		r := e.do(t, call{Method: http.MethodGet, Path: "/v1/certificates/" + strings.ToUpper(last.Serial), Header: bearer(e.token)})
		if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"serial":"`+last.Serial+`"`) {
			t.Errorf("status %d: %s", r.Status, r.Body)
		}
	})

	t.Run("fail/bad-serial", func(t *testing.T) {
		r := e.do(t, call{Method: http.MethodGet, Path: "/v1/certificates/XYZ", Header: bearer(e.token), Invalid: true})
		if p := r.problem(t); r.Status != http.StatusBadRequest || p.Type != rotor.EInvalid.ProblemType() {
			t.Errorf("status %d type %s", r.Status, p.Type)
		}
	})

	t.Run("fail/bad-fingerprint", func(t *testing.T) {
		h := withType(bearer(e.token), "application/pkcs10")
		h.Set("Rotor-Bundle-Fingerprint", strings.ToUpper(fp))
		r := e.do(t, call{Method: http.MethodPost, Path: "/v1/certificates", Header: h, Body: der, Invalid: true})
		if p := r.problem(t); r.Status != http.StatusBadRequest || p.Type != rotor.EInvalid.ProblemType() {
			t.Errorf("status %d type %s", r.Status, p.Type)
		}
	})

	t.Run("fail/unknown-json-field", func(t *testing.T) {
		body := []byte(`{"csr":` + jsonString(string(csrPEM(der))) + `,"lifetime":"1h"}`)
		r := e.do(t, call{Method: http.MethodPost, Path: "/v1/certificates",
			Header: withType(bearer(e.token), "application/json"), Body: body, Invalid: true})
		if p := r.problem(t); r.Status != http.StatusBadRequest || p.Type != rotor.EInvalid.ProblemType() {
			t.Errorf("status %d type %s", r.Status, p.Type)
		}
	})
}

func withType(h http.Header, contentType string) http.Header {
	h.Set("Content-Type", contentType)
	return h
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// foreignLeaf is a client certificate for id that a CA with another root
// issued: what a workload holds after its root was retired.
func foreignLeaf(t testing.TB, id rotor.Identity) tls.Certificate {
	t.Helper()
	other := testpki.New(t, testpki.Options{Name: "Other"})
	key := testpki.Key(t, "ecdsa-p256")
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: id.DNSName(trustDomain)},
		DNSNames: []string{id.DNSName(trustDomain)}, URIs: []*url.URL{id.SPIFFEID(trustDomain)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}
	issuer := other.Trust.Issuer
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer.Certificate, key.Public(), other.IssuerKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der, issuer.Certificate.Raw}, PrivateKey: key}
}

// pemKey is key as PKCS#8 PEM, for tls.X509KeyPair.
func pemKey(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}
