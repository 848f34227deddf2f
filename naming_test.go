package rotor_test

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"net/url"
	"slices"
	"testing"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/testpki"
)

// TestIssueLinkerdNaming: a leaf issued with NamingLinkerd carries the
// Linkerd name alone (DNS SAN and CN, no URI), under the policy's suffix,
// and its CSR is held to Linkerd's rule: exactly that one DNS name, a CN
// empty or the same, nothing else; a requested name must be the caller's.
func TestIssueLinkerdNaming(t *testing.T) {
	t.Parallel()
	const suffix = "identity.mesh.example.org"
	ca, audit := newTestCA(t, func(c *rotor.CAConfig) { c.Policy.LinkerdSuffix = suffix })
	name := "webapp.default.serviceaccount." + suffix
	key := testpki.Key(t, "ecdsa-p256")
	csr := func(tmpl *x509.CertificateRequest) []byte { return testpki.CSR(t, key, tmpl) }
	spiffe, _ := url.Parse("spiffe://cluster.local/ns/default/sa/webapp")
	tests := []struct {
		name string
		csr  []byte
		ask  string // the requested identity
		want rotor.ErrorCode
	}{
		{name: "ok/dns-only", csr: csr(&x509.CertificateRequest{DNSNames: []string{name}}), ask: name},
		{name: "ok/dns-and-cn", csr: csr(&x509.CertificateRequest{Subject: pkix.Name{CommonName: name}, DNSNames: []string{name}})},
		{name: "fail/no-san", csr: csr(nil), ask: name, want: rotor.EForbidden},
		{name: "fail/rotor-name", csr: csr(&x509.CertificateRequest{DNSNames: []string{webapp.DNSName("cluster.local")}}), want: rotor.EForbidden},
		{name: "fail/two-dns", csr: csr(&x509.CertificateRequest{DNSNames: []string{name, name}}), want: rotor.EForbidden},
		{name: "fail/extra-uri", csr: csr(&x509.CertificateRequest{DNSNames: []string{name}, URIs: []*url.URL{spiffe}}), want: rotor.EForbidden},
		{name: "fail/extra-ip", csr: csr(&x509.CertificateRequest{DNSNames: []string{name}, IPAddresses: []net.IP{net.IPv4(10, 0, 0, 1)}}), want: rotor.EForbidden},
		{name: "fail/other-cn", csr: csr(&x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}, DNSNames: []string{name}}), want: rotor.EForbidden},
		{name: "fail/asks-for-other-identity", csr: csr(&x509.CertificateRequest{DNSNames: []string{name}}),
			ask: "admin.default.serviceaccount." + suffix, want: rotor.EForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss, _, err := ca.Issue(context.Background(), rotor.IssueRequest{CSR: tt.csr, Naming: rotor.NamingLinkerd, Name: tt.ask,
				Credentials: rotor.Credentials{BearerToken: "good"}})
			if code := rotor.ErrorCodeOf(err); code != tt.want {
				t.Fatalf("code %q (%v), want %q", code, err, tt.want)
			}
			if err != nil {
				return
			}
			leaf, err := x509.ParseCertificate(iss.Certificate)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(leaf.DNSNames, []string{name}) || leaf.Subject.CommonName != name || len(leaf.URIs) != 0 ||
				!slices.Equal(iss.SANs, []string{name}) {
				t.Errorf("leaf names %v %q %v, audit SANs %v; want %s alone", leaf.DNSNames, leaf.Subject.CommonName, leaf.URIs, iss.SANs, name)
			}
		})
	}
	if n, _, _ := audit.counts(); n != 2 {
		t.Errorf("%d issuances recorded, want 2", n)
	}
}

// TestLinkerdName: Linkerd's names need labels, so a dotted service
// account (a valid Kubernetes name) has none.
func TestLinkerdName(t *testing.T) {
	t.Parallel()
	if n, err := webapp.LinkerdName(rotor.DefaultLinkerdSuffix); err != nil || n != "webapp.default.serviceaccount.identity.linkerd.cluster.local" {
		t.Errorf("LinkerdName = %q, %v", n, err)
	}
	dotted := rotor.Identity{Namespace: "default", ServiceAccount: "a.b"}
	if _, err := dotted.LinkerdName(rotor.DefaultLinkerdSuffix); rotor.ErrorCodeOf(err) != rotor.EForbidden {
		t.Errorf("dotted service account: %v, want %s", err, rotor.EForbidden)
	}
	p := testPolicy()
	p.LinkerdSuffix = "Not_A.Name"
	if err := p.Validate(); rotor.ErrorCodeOf(err) != rotor.EInvalid {
		t.Errorf("bad suffix validates: %v", err)
	}
}
