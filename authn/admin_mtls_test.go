package authn

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/testpki"
)

// adminCert is a client certificate for an operator, signed by root's key.
func adminCert(t *testing.T, root *x509.Certificate, rootKey any, usage x509.ExtKeyUsage) *x509.Certificate {
	t.Helper()
	key := testpki.Key(t, "ecdsa-p256")
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "alice@ops"},
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root, key.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAdminMTLS: a certificate from the admin CA is an admin caller;
// anything else is not this authenticator's kind, so the workload
// authenticators see it; the workload CA can never be the admin CA.
func TestAdminMTLS(t *testing.T) {
	t.Parallel()
	adminRoot, adminKey := testpki.Root(t, "Ops CA", rotor.ECDSAP256, 48*time.Hour, t0.Add(-time.Hour))
	workload := newPKI(t, "workload")
	a := NewAdminMTLS([]*x509.Certificate{adminRoot}, func() time.Time { return t0 })
	tests := []struct {
		name  string
		chain []*x509.Certificate
		admin bool
	}{
		{"ok/admin-client-cert", []*x509.Certificate{adminCert(t, adminRoot, adminKey, x509.ExtKeyUsageClientAuth)}, true},
		{"no-creds/server-auth-only", []*x509.Certificate{adminCert(t, adminRoot, adminKey, x509.ExtKeyUsageServerAuth)}, false},
		{"no-creds/workload-cert", workload.leaf(t, shopWeb, trustDomain, nil), false},
		{"no-creds/the-admin-ca-itself", []*x509.Certificate{adminRoot}, false},
		{"no-creds/none", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			caller, err := a.Authenticate(context.Background(), rotor.Credentials{PeerCertificates: tt.chain})
			if !tt.admin {
				if !errors.Is(err, rotor.ErrNoCredentials) {
					t.Fatalf("got %+v, %v; want no credentials of this kind", caller, err)
				}
				return
			}
			if err != nil || !caller.Admin || caller.Name != "CN=alice@ops" || caller.Authenticator != NameAdminMTLS ||
				caller.Identity != (rotor.Identity{}) {
				t.Fatalf("got %+v, %v; want admin alice@ops without identity", caller, err)
			}
		})
	}
	if err := CheckAdminCA([]*x509.Certificate{workload.Root}, workload.Trust); err == nil {
		t.Error("the workload root was accepted as the admin CA")
	}
	if err := CheckAdminCA([]*x509.Certificate{adminRoot}, workload.Trust); err != nil {
		t.Errorf("a separate admin CA was refused: %v", err)
	}
}
