package issuer

import (
	"context"
	"crypto/x509"
	"path/filepath"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/authn"
	"github.com/rotor-dev/rotor/internal/testpki"
	"github.com/rotor-dev/rotor/store"
)

var webapp = rotor.Identity{Namespace: "default", ServiceAccount: "webapp"}

// testCA is the core CA over trust with a real SQLite audit store and a
// static token, as rotor-ca serve wires it, minus HTTP.
type testCA struct {
	ca    *rotor.CA
	token string
}

func newTestCA(t testing.TB, trust rotor.TrustSource) *testCA {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "rotor.db"),
		store.Options{Migrate: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	token, rec, err := rotor.NewStaticToken(nil, webapp, time.Now())
	if err == nil {
		err = st.CreateToken(context.Background(), rec, testAction)
	}
	if err != nil {
		t.Fatal(err)
	}
	ca, err := rotor.NewCA(rotor.CAConfig{Policy: rotor.Policy{TrustDomain: "cluster.local", DefaultTTL: time.Hour,
		MaxTTL: time.Hour}, Trust: trust, Authenticator: authn.NewStaticTokens(st, nil, nil), Audit: st, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{ca: ca, token: token}
}

// issue gets a leaf for a new key and returns it with the issuer that
// signed it.
func (c *testCA) issue(ctx context.Context, t testing.TB) (*x509.Certificate, *rotor.Issuer, error) {
	csr := testpki.CSR(t, testpki.Key(t, string(rotor.ECDSAP256)), nil)
	iss, issuer, err := c.ca.Issue(ctx, rotor.IssueRequest{CSR: csr, Credentials: rotor.Credentials{BearerToken: c.token}})
	if err != nil {
		return nil, nil, err
	}
	leaf, err := x509.ParseCertificate(iss.Certificate)
	return leaf, issuer, err
}

// checkIssues issues one leaf with trust and verifies it through its
// chain to the bundle.
func checkIssues(t testing.TB, trust *rotor.Trust) {
	t.Helper()
	leaf, issuer, err := newTestCA(t, rotor.NewTrustHolder(trust)).issue(context.Background(), t)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyLeaf(leaf, issuer, trust.Bundle); err != nil {
		t.Fatal(err)
	}
}

// verifyLeaf checks that leaf chains through the issuer's chain to bundle.
func verifyLeaf(leaf *x509.Certificate, issuer *rotor.Issuer, bundle *rotor.Bundle) error {
	inter := x509.NewCertPool()
	for _, c := range issuer.Chain {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: bundle.Pool(), Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return err
}

// testAction is the admin action tests create tokens with.
var testAction = rotor.AdminAction{Time: time.Now(), Actor: rotor.Actor{Name: "cli:test", Kind: rotor.ActorCLI}}
