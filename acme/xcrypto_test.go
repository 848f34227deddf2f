package acme_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"testing"
	"time"

	xacme "golang.org/x/crypto/acme"

	"github.com/rotor-dev/rotor"
)

// TestXCryptoACME drives golang.org/x/crypto/acme, the ancestor of
// cert-manager's ACME client, through the whole flow on each store:
// binding, a refused reused EAB key, an order, a certificate with its
// audit row, a refused identifier with its refusal row, a key rollover,
// revocation by account and by certificate key, and deactivation.
func TestXCryptoACME(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, b.url(t), nil)
			ctx := t.Context()
			kid, mac := e.eab(t, webapp)
			c := e.xregister(t, kid, mac)
			t.Run("fail/eab-reused", func(t *testing.T) {
				other := e.xclient(t, mustKey(t, "rsa"))
				_, err := other.Register(ctx, &xacme.Account{ExternalAccountBinding: &xacme.ExternalAccountBinding{KID: kid, Key: mac}},
					xacme.AcceptTOS)
				wantProblem(t, err, "unauthorized")
			})
			t.Run("fail/no-eab", func(t *testing.T) {
				_, err := e.xclient(t, mustKey(t, "rsa")).Register(ctx, &xacme.Account{}, xacme.AcceptTOS)
				wantProblem(t, err, "externalAccountRequired")
			})
			dns := webapp.DNSName(trustDomain)
			leafKey := mustKey(t, "ecdsa")
			der := e.xobtain(t, c, dns, leafKey)
			t.Run("ok/audit-row", func(t *testing.T) { e.checkAudited(t, der) })
			t.Run("fail/other-identity", func(t *testing.T) {
				_, err := c.AuthorizeOrder(ctx, xacme.DomainIDs(rotor.Identity{Namespace: "default", ServiceAccount: "db"}.DNSName(trustDomain)))
				wantProblem(t, err, "rejectedIdentifier")
				if n := e.count(t, `SELECT count(*) FROM refusals WHERE authenticator = 'acme' AND reason = 'identity-not-allowed'
					AND namespace = $1 AND service_account = $2`, webapp.Namespace, webapp.ServiceAccount); n != 1 {
					t.Fatalf("%d refusal rows for the other identity's order, want 1", n)
				}
			})
			t.Run("ok/key-rollover", func(t *testing.T) {
				if err := c.AccountKeyRollover(ctx, mustKey(t, "ecdsa")); err != nil {
					t.Fatalf("AccountKeyRollover: %v", err)
				}
				e.xobtain(t, c, dns, mustKey(t, "rsa"))
			})
			t.Run("ok/revoke-by-account", func(t *testing.T) { e.xrevoke(t, c, nil, der) })
			t.Run("ok/revoke-by-certificate-key", func(t *testing.T) {
				k := mustKey(t, "rsa")
				e.xrevoke(t, e.xclient(t, mustKey(t, "ecdsa")), k, e.xobtain(t, c, dns, k))
			})
			t.Run("fail/deactivated", func(t *testing.T) {
				if err := c.DeactivateReg(ctx); err != nil {
					t.Fatalf("DeactivateReg: %v", err)
				}
				_, err := c.AuthorizeOrder(ctx, xacme.DomainIDs(dns))
				wantProblem(t, err, "unauthorized")
			})
			t.Run("fail/denied-identity", func(t *testing.T) { e.xdenied(t) })
		})
	}
}

// xdenied denies webapp: its account can no longer order, and its EAB
// keys no longer bind.
func (e *env) xdenied(t *testing.T) {
	kid, mac := e.eab(t, webapp)
	c := e.xregister(t, kid, mac)
	admin := rotor.Caller{Admin: true, Authenticator: "token", Subject: "token:000000000000", Name: "test"}
	if _, err := e.ca.DenyIdentity(t.Context(), admin, "", webapp, "compromised", false); err != nil {
		t.Fatal(err)
	}
	_, err := c.AuthorizeOrder(t.Context(), xacme.DomainIDs(webapp.DNSName(trustDomain)))
	wantProblem(t, err, "unauthorized")
	kid, mac = e.eab(t, webapp)
	_, err = e.xclient(t, mustKey(t, "ecdsa")).Register(t.Context(), &xacme.Account{
		ExternalAccountBinding: &xacme.ExternalAccountBinding{KID: kid, Key: mac}}, xacme.AcceptTOS)
	wantProblem(t, err, "unauthorized")
}

// xregister is an x/crypto client with a new ECDSA account bound by the
// EAB key kid.
func (e *env) xregister(t testing.TB, kid string, mac []byte) *xacme.Client {
	t.Helper()
	c := e.xclient(t, mustKey(t, "ecdsa"))
	if _, err := c.Register(t.Context(), &xacme.Account{ExternalAccountBinding: &xacme.ExternalAccountBinding{KID: kid, Key: mac}},
		xacme.AcceptTOS); err != nil {
		t.Fatalf("Register: %v", err)
	}
	return c
}

// xclient is an x/crypto ACME client of the env with account key key.
func (e *env) xclient(t testing.TB, key crypto.Signer) *xacme.Client {
	return &xacme.Client{Key: key, DirectoryURL: e.directory(), HTTPClient: e.client, UserAgent: "rotor-test"}
}

// xobtain orders, finalizes and downloads a certificate for dns with a
// CSR of key, checks what came back, and returns the leaf.
func (e *env) xobtain(t testing.TB, c *xacme.Client, dns string, key crypto.Signer) []byte {
	t.Helper()
	ctx := t.Context()
	o, err := c.AuthorizeOrder(ctx, xacme.DomainIDs(dns))
	if err != nil {
		t.Fatalf("AuthorizeOrder: %v", err)
	}
	if o.Status != xacme.StatusReady || len(o.AuthzURLs) != 1 {
		t.Fatalf("order %+v: want ready with one authorization", o)
	}
	z, err := c.GetAuthorization(ctx, o.AuthzURLs[0])
	if err != nil || z.Status != xacme.StatusValid || len(z.Challenges) != 1 || z.Challenges[0].Status != xacme.StatusValid {
		t.Fatalf("authorization %+v, %v: want valid with one valid challenge", z, err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{dns}}, key)
	if err != nil {
		t.Fatal(err)
	}
	chain, _, err := c.CreateOrderCert(ctx, o.FinalizeURL, csr, true)
	if err != nil {
		t.Fatalf("CreateOrderCert: %v", err)
	}
	e.verifyChain(t, chain, dns)
	return chain[0]
}

// verifyChain checks a leaf and its chain against the CA's root: it is a
// workload certificate for dns and its SPIFFE ID.
func (e *env) verifyChain(t testing.TB, chain [][]byte, dns string) *x509.Certificate {
	t.Helper()
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	for _, der := range chain[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: e.pki.Bundle.Pool(), Intermediates: inter, DNSName: dns,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("leaf does not verify as a client certificate for %s: %v", dns, err)
	}
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != webapp.SPIFFEID(trustDomain).String() {
		t.Fatalf("leaf URIs %v, want the SPIFFE ID of %s", leaf.URIs, webapp)
	}
	return leaf
}

// checkAudited checks that der has its audit row, made for an ACME
// account, before the client ever saw it.
func (e *env) checkAudited(t testing.TB, der []byte) {
	t.Helper()
	leaf, _ := x509.ParseCertificate(der)
	iss, err := e.store.Issuance(t.Context(), leaf.SerialNumber.Text(16))
	if err != nil {
		t.Fatalf("no audit row for the ACME certificate: %v", err)
	}
	if iss.Authenticator != rotor.AuthenticatorACME || iss.Identity != webapp || !bytes.Equal(iss.Certificate, der) ||
		len(iss.TokenSubject) < len("acme-account:") || iss.TokenSubject[:13] != "acme-account:" {
		t.Fatalf("audit row %+v: want authenticator acme, identity %s, the account as subject", iss, webapp)
	}
}

// xrevoke revokes der (with the account, or with key) and checks that its
// renewal info says renew now.
func (e *env) xrevoke(t testing.TB, c *xacme.Client, key crypto.Signer, der []byte) {
	t.Helper()
	if err := c.RevokeCert(t.Context(), key, der, xacme.CRLReasonKeyCompromise); err != nil {
		t.Fatalf("RevokeCert: %v", err)
	}
	// x/crypto takes alreadyRevoked for success: the store says it was
	// revoked once, for the reason asked, by whom.
	if err := c.RevokeCert(t.Context(), key, der, xacme.CRLReasonKeyCompromise); err != nil {
		t.Fatalf("RevokeCert again: %v", err)
	}
	leaf, _ := x509.ParseCertificate(der)
	st, err := e.store.CertificateStatus(t.Context(), leaf.SerialNumber.Text(16))
	if err != nil || st.Revocation == nil || st.Revocation.Reason != rotor.ReasonKeyCompromise {
		t.Fatalf("certificate status after revokeCert: %+v, %v", st, err)
	}
	if key == nil && st.Revocation.Actor[:13] != "acme-account:" || key != nil && st.Revocation.Actor[:16] != "certificate-key:" {
		t.Fatalf("revoked by %q: want the account, or the certificate key", st.Revocation.Actor)
	}
	w := e.renewalInfo(t, der)
	if now := time.Now(); now.Before(w.Start) {
		t.Fatalf("renewal window of a revoked certificate %+v is not open at %v", w, now)
	}
}

// renewalInfo GETs the RFC 9773 renewal info of der.
func (e *env) renewalInfo(t testing.TB, der []byte) rotor.RenewalWindow {
	t.Helper()
	leaf, _ := x509.ParseCertificate(der)
	res, err := e.client.Get(e.url + "/acme/renewal-info/" + b64(leaf.AuthorityKeyId) + "." + b64(leaf.SerialNumber.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var info rotor.RenewalInfo
	if err := json.NewDecoder(res.Body).Decode(&info); err != nil || res.StatusCode != 200 || res.Header.Get("Retry-After") == "" {
		t.Fatalf("renewal info: %d %v, Retry-After %q", res.StatusCode, err, res.Header.Get("Retry-After"))
	}
	return info.SuggestedWindow
}

func wantProblem(t testing.TB, err error, typ string) {
	t.Helper()
	var ae *xacme.Error
	if !errors.As(err, &ae) || ae.ProblemType != "urn:ietf:params:acme:error:"+typ {
		t.Fatalf("error %v, want ACME problem %s", err, typ)
	}
}

func mustKey(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	var k crypto.Signer
	var err error
	switch kind {
	case "ecdsa":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ed25519":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil || k == nil {
		t.Fatalf("key %s: %v", kind, err)
	}
	return k
}
