package acme_test

import (
	"crypto"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	legoacme "github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/acme/api"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/lego"
	"github.com/go-acme/lego/v5/registration"

	"github.com/rotor-dev/rotor"
)

// legoUser is the registration.User the lego library asks for.
type legoUser struct {
	key crypto.Signer
	reg *legoacme.ExtendedAccount
}

func (u *legoUser) GetEmail() string                           { return "" }
func (u *legoUser) GetRegistration() *legoacme.ExtendedAccount { return u.reg }
func (u *legoUser) GetPrivateKey() crypto.Signer               { return u.key }

// legoClient is a lego library client of the env, registered with a new
// EAB key for id.
func (e *env) legoClient(t testing.TB, id rotor.Identity) *lego.Client {
	t.Helper()
	u := &legoUser{key: mustKey(t, "ecdsa")}
	cfg := lego.NewConfig(u)
	cfg.CADirURL, cfg.HTTPClient = e.directory(), e.client
	c, err := lego.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	kid, mac := e.eab(t, id)
	if u.reg, err = c.Registration.RegisterWithExternalAccountBinding(t.Context(), registration.RegisterEABOptions{
		TermsOfServiceAgreed: true, Kid: kid, HmacEncoded: b64(mac)}); err != nil {
		t.Fatalf("lego RegisterWithExternalAccountBinding: %v", err)
	}
	return c
}

// TestLegoLibrary drives the lego v5 library on each store: obtain, ARI
// renewal information, a renewal that replaces the certificate (RFC 9773
// replaces), a second replacement of it answered alreadyReplaced (which
// lego retries without replaces), and replaces naming another account's
// certificate refused.
func TestLegoLibrary(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, b.url(t), nil)
			ctx := t.Context()
			c := e.legoClient(t, webapp)
			dns := webapp.DNSName(trustDomain)
			res, err := c.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: []string{dns}, Bundle: true,
				KeyType: certcrypto.EC256})
			if err != nil {
				t.Fatalf("lego Obtain: %v", err)
			}
			old := e.legoLeaf(t, res, dns)
			info, err := c.Certificate.GetRenewalInfo(ctx, old)
			if err != nil {
				t.Fatalf("lego GetRenewalInfo: %v", err)
			}
			if w := info.SuggestedWindow; !w.Start.After(time.Now()) || !w.End.After(w.Start) || w.End.After(old.NotAfter) {
				t.Fatalf("renewal window of a fresh certificate %+v: want one ahead, before %v", w, old.NotAfter)
			}
			opts := &certificate.RenewOptions{UseARICertID: true, Bundle: true, KeyType: certcrypto.EC256}
			for i := range 2 {
				renewed, err := c.Certificate.Renew(ctx, *res, opts)
				if err != nil {
					t.Fatalf("lego Renew %d: %v", i+1, err)
				}
				e.legoLeaf(t, renewed, dns)
			}
			if n := e.count(t, `SELECT count(*) FROM acme_orders WHERE replaces = $1`, old.SerialNumber.Text(16)); n != 1 {
				t.Fatalf("%d orders replace %s, want 1 (the second was answered alreadyReplaced)", n, old.SerialNumber.Text(16))
			}
			t.Run("fail/replaces-another-accounts-certificate", func(t *testing.T) {
				certID, err := api.MakeARICertID(old)
				if err != nil {
					t.Fatal(err)
				}
				other := e.legoClient(t, webapp)
				_, err = other.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: []string{dns}, KeyType: certcrypto.EC256,
					ReplacesCertID: certID})
				var p *legoacme.ProblemDetails
				if !errors.As(err, &p) || p.Type != "urn:ietf:params:acme:error:malformed" {
					t.Fatalf("replacing another account's certificate: %v, want malformed", err)
				}
			})
		})
	}
}

// legoLeaf checks what lego obtained and returns the leaf.
func (e *env) legoLeaf(t testing.TB, res *certificate.Resource, dns string) *x509.Certificate {
	t.Helper()
	certs, err := certcrypto.ParsePEMBundle(res.Certificate)
	if err != nil || len(certs) < 2 {
		t.Fatalf("lego's bundle: %d certificates, %v; want the leaf and its chain", len(certs), err)
	}
	chain := make([][]byte, len(certs))
	for i, c := range certs {
		chain[i] = c.Raw
	}
	leaf := e.verifyChain(t, chain, dns)
	e.checkAudited(t, leaf.Raw)
	return leaf
}
