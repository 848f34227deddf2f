package issuer

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/testpki"
)

// TestServingCert: the CA's own certificate verifies against the bundle
// for its names, is kept until its renewal point, and is issued again
// after it or at once when the issuer changes.
func TestServingCert(t *testing.T) {
	t.Parallel()
	a, b := testpki.New(t, testpki.Options{Name: "A"}), testpki.New(t, testpki.Options{Name: "B"})
	holder := rotor.NewTrustHolder(a.Trust)
	now := time.Now()
	s := &ServingCert{Names: []string{"rotor-ca.example", "127.0.0.1"}, Trust: holder, Lifetime: time.Hour,
		Log: quiet, Now: func() time.Time { return now }}
	get := func() *tls.Certificate {
		t.Helper()
		c, err := s.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	first := get()
	inter := x509.NewCertPool()
	inter.AddCert(a.Issuer.Certificate)
	for _, name := range []string{"rotor-ca.example", "127.0.0.1"} {
		if _, err := first.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: a.Bundle.Pool(), Intermediates: inter,
			CurrentTime: now}); err != nil {
			t.Errorf("serving certificate for %s: %v", name, err)
		}
	}
	now = now.Add(39 * time.Minute)
	if get() != first {
		t.Error("re-issued before the renewal point")
	}
	now = now.Add(2 * time.Minute)
	second := get()
	if second == first {
		t.Error("not re-issued after two thirds of its life")
	}
	holder.Set(b.Trust)
	if third := get(); third == second || third.Leaf.CheckSignatureFrom(b.Issuer.Certificate) != nil {
		t.Error("not re-issued by the new issuer")
	}
}
