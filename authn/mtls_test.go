package authn

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/testpki"
)

// testPKI is a real root and issuer made the way rotor-ca makes them.
type testPKI struct{ *testpki.PKI }

func newPKI(t testing.TB, name string) *testPKI {
	return &testPKI{testpki.New(t, testpki.Options{Name: name, Lifetime: 30 * 24 * time.Hour, Now: t0})}
}

// trust returns a TrustSource signing with p's issuer and trusting p's root
// and the extra roots.
func (p *testPKI) trust(t testing.TB, extraRoots ...*x509.Certificate) rotor.TrustSource {
	t.Helper()
	bundle, err := rotor.NewBundle(append([]*x509.Certificate{p.Root}, extraRoots...))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := rotor.NewTrust(p.Issuer, bundle, t0)
	if err != nil {
		t.Fatal(err)
	}
	return rotor.NewTrustHolder(tr)
}

// leaf issues a workload leaf for id in td the way the CA does, after edit,
// and returns it with the chain a client presents (leaf, issuer).
func (p *testPKI) leaf(t testing.TB, id rotor.Identity, td string, edit func(*x509.Certificate)) []*x509.Certificate {
	t.Helper()
	dns := id.DNSName(td)
	tmpl := &x509.Certificate{
		SerialNumber: new(big.Int).SetBytes([]byte{0x4a, 0x0b, 0xcd, 0xef, 0x01, 0x23, 0x45, byte(len(dns))}),
		Subject:      pkix.Name{CommonName: dns},
		DNSNames:     []string{dns},
		URIs:         []*url.URL{id.SPIFFEID(td)},
		NotBefore:    t0.Add(-time.Minute),
		NotAfter:     t0.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if edit != nil {
		edit(tmpl)
	}
	key := testpki.Key(t, "ecdsa-p256")
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.Issuer.Certificate, key.Public(),
		rotor.CryptoSigner(context.Background(), p.Issuer.Signer))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return []*x509.Certificate{cert, p.Issuer.Certificate}
}

func TestMTLS(t *testing.T) {
	t.Parallel()
	pki, other, next := newPKI(t, "current"), newPKI(t, "other"), newPKI(t, "next")
	a := NewMTLS(pki.trust(t), onRecord, trustDomain, func() time.Time { return t0 })
	// Mid root rotation: the new issuer signs, both roots are trusted.
	rotating := NewMTLS(next.trust(t, pki.Root), onRecord, trustDomain, func() time.Time { return t0 })
	admin := rotor.Identity{Namespace: "shop", ServiceAccount: "admin"}
	tests := []struct {
		name  string
		auth  *MTLS
		chain []*x509.Certificate
		want  rotor.ErrorCode
	}{
		{name: "ok/issued-leaf", chain: pki.leaf(t, shopWeb, trustDomain, nil)},
		{name: "ok/old-root-during-rotation", auth: rotating, chain: pki.leaf(t, shopWeb, trustDomain, nil)},
		{name: "fail/expired", chain: pki.leaf(t, shopWeb, trustDomain, func(c *x509.Certificate) {
			c.NotBefore, c.NotAfter = t0.Add(-25*time.Hour), t0.Add(-time.Hour)
		}), want: rotor.EUnauthenticated},
		{name: "fail/not-yet-valid", chain: pki.leaf(t, shopWeb, trustDomain, func(c *x509.Certificate) {
			c.NotBefore = t0.Add(time.Hour)
		}), want: rotor.EUnauthenticated},
		{name: "fail/other-root", chain: other.leaf(t, shopWeb, trustDomain, nil), want: rotor.EUnauthenticated},
		{name: "fail/retired-root", auth: NewMTLS(next.trust(t), onRecord, trustDomain, func() time.Time { return t0 }),
			chain: pki.leaf(t, shopWeb, trustDomain, nil), want: rotor.EUnauthenticated},
		{name: "fail/missing-intermediate", chain: pki.leaf(t, shopWeb, trustDomain, nil)[:1], want: rotor.EUnauthenticated},
		{name: "fail/no-uri-san", chain: pki.leaf(t, shopWeb, trustDomain, func(c *x509.Certificate) { c.URIs = nil }),
			want: rotor.EUnauthenticated},
		{name: "fail/two-uri-sans", chain: pki.leaf(t, shopWeb, trustDomain, func(c *x509.Certificate) {
			c.URIs = append(c.URIs, admin.SPIFFEID(trustDomain))
		}), want: rotor.EUnauthenticated},
		{name: "fail/other-trust-domain", chain: pki.leaf(t, shopWeb, "other.local", nil), want: rotor.EUnauthenticated},
		{name: "fail/dns-san-for-other-identity", chain: pki.leaf(t, shopWeb, trustDomain, func(c *x509.Certificate) {
			c.DNSNames = []string{admin.DNSName(trustDomain)}
		}), want: rotor.EUnauthenticated},
		{name: "fail/extra-dns-san", chain: pki.leaf(t, shopWeb, trustDomain, func(c *x509.Certificate) {
			c.DNSNames = append(c.DNSNames, "web.example.com")
		}), want: rotor.EUnauthenticated},
		{name: "fail/no-dns-san", chain: pki.leaf(t, shopWeb, trustDomain, func(c *x509.Certificate) { c.DNSNames = nil }),
			want: rotor.EUnauthenticated},
		{name: "fail/server-auth-only", chain: pki.leaf(t, shopWeb, trustDomain, func(c *x509.Certificate) {
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		}), want: rotor.EUnauthenticated},
		{name: "fail/ca-cert-as-leaf", chain: []*x509.Certificate{pki.Issuer.Certificate, pki.Root}, want: rotor.EUnauthenticated},
		{name: "fail/ca-cert-with-workload-sans", chain: pki.leaf(t, shopWeb, trustDomain, func(c *x509.Certificate) {
			c.IsCA, c.BasicConstraintsValid, c.KeyUsage = true, true, x509.KeyUsageCertSign|x509.KeyUsageDigitalSignature
		}), want: rotor.EUnauthenticated},
		{name: "fail/root-as-leaf", chain: []*x509.Certificate{pki.Root}, want: rotor.EUnauthenticated},
		{name: "no-creds/none", chain: nil, want: errNoCreds},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			auth := tt.auth
			if auth == nil {
				auth = a
			}
			caller, err := auth.Authenticate(context.Background(), rotor.Credentials{PeerCertificates: tt.chain})
			checkResult(t, caller, err, tt.want, NameMTLS, shopWeb)
			if err != nil {
				return
			}
			if want := "serial:" + hex.EncodeToString(tt.chain[0].SerialNumber.Bytes()); caller.Subject != want {
				t.Errorf("subject = %q, want %q", caller.Subject, want)
			}
		})
	}
}

// TestMTLSRenewsWhatTheCAIssued issues a leaf through the real CA, recorded
// in a real SQLite store, then renews with it: the leaf the CA makes is the
// credential MTLS accepts.
func TestMTLSRenewsWhatTheCAIssued(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pki := newPKI(t, "ca")
	st := openSQLite(t)
	token := seedToken(t, st)
	trust := pki.trust(t)
	now := func() time.Time { return t0 }
	ca, err := rotor.NewCA(rotor.CAConfig{
		Policy: rotor.Policy{TrustDomain: trustDomain, DefaultTTL: 24 * time.Hour, MaxTTL: 48 * time.Hour, ClockSkew: time.Minute},
		Trust:  trust, Audit: st, Now: now,
		Authenticator: rotor.Authenticators{NewMTLS(trust, st, trustDomain, now), NewStaticTokens(st, now, nil)},
	})
	if err != nil {
		t.Fatal(err)
	}
	issue := func(cred rotor.Credentials) (*rotor.Issuance, []*x509.Certificate) {
		t.Helper()
		csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, testpki.Key(t, "ecdsa-p256"))
		if err != nil {
			t.Fatal(err)
		}
		iss, issuer, err := ca.Issue(ctx, rotor.IssueRequest{CSR: csr, Credentials: cred})
		if err != nil {
			t.Fatalf("issue: %v", err)
		}
		leaf, err := x509.ParseCertificate(iss.Certificate)
		if err != nil {
			t.Fatal(err)
		}
		return iss, append([]*x509.Certificate{leaf}, issuer.Chain...)
	}
	first, chain := issue(rotor.Credentials{BearerToken: token})
	renewed, renewedChain := issue(rotor.Credentials{PeerCertificates: chain})
	if renewed.Credential != first.TokenSubject || first.Credential != first.TokenSubject {
		t.Errorf("credential lineage: first %q, renewal %q; want both %q", first.Credential, renewed.Credential, first.TokenSubject)
	}
	if renewed.Authenticator != NameMTLS || renewed.TokenSubject != "serial:"+first.Serial || renewed.Identity != shopWeb {
		t.Errorf("renewal = %s by %s (%s), want %v by mtls with serial:%s",
			renewed.Identity, renewed.Authenticator, renewed.TokenSubject, shopWeb, first.Serial)
	}
	got, err := st.Issuance(ctx, renewed.Serial)
	if err != nil || got.TokenSubject != renewed.TokenSubject {
		t.Errorf("audit row = %+v, %v; want token subject %s", got, err, renewed.TokenSubject)
	}

	// Taking back: a revoked certificate no longer renews; revoking the
	// token stops every renewal its lineage began.
	mtls := NewMTLS(trust, st, trustDomain, now)
	refused := func(chain []*x509.Certificate, want string) {
		t.Helper()
		_, err := mtls.Authenticate(ctx, rotor.Credentials{PeerCertificates: chain})
		if rotor.ErrorCodeOf(err) != rotor.EUnauthenticated || !strings.Contains(err.Error(), want) {
			t.Errorf("renewal = %v, want unauthenticated mentioning %q", err, want)
		}
	}
	if err := st.RevokeCertificate(ctx, rotor.Revocation{Serial: renewed.Serial, Time: t0, Reason: rotor.ReasonKeyCompromise,
		Actor: "test", Comment: "key leaked"}, testAction); err != nil {
		t.Fatal(err)
	}
	refused(renewedChain, "was revoked")
	if _, err := mtls.Authenticate(ctx, rotor.Credentials{PeerCertificates: chain}); err != nil {
		t.Fatalf("the first certificate is not revoked: %v", err)
	}
	if _, err := st.RevokeToken(ctx, first.TokenSubject, testAction); err != nil {
		t.Fatal(err)
	}
	refused(chain, "can no longer authenticate")
}
