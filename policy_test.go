package rotor_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/testpki"
)

var webapp = rotor.Identity{Namespace: "default", ServiceAccount: "webapp"}

func testPolicy() rotor.Policy {
	return rotor.Policy{TrustDomain: "cluster.local", DefaultTTL: 24 * time.Hour, MaxTTL: 48 * time.Hour, ClockSkew: 20 * time.Second}
}

func TestPolicyCheckCSR(t *testing.T) {
	p := testPolicy()
	dns := webapp.DNSName(p.TrustDomain)
	spiffe := webapp.SPIFFEID(p.TrustDomain)
	other, _ := url.Parse("spiffe://cluster.local/ns/default/sa/admin")
	bc, _ := asn1.Marshal(struct {
		IsCA bool
	}{true})
	p256 := testpki.Key(t, "ecdsa-p256")
	badSig := testpki.CSR(t, p256, nil)
	badSig[len(badSig)-5] ^= 0xff

	tests := []struct {
		name     string
		csr      []byte
		want     rotor.ErrorCode
		wantAlg  string
		wantSize int
	}{
		{name: "ok/ecdsa-p256", csr: testpki.CSR(t, p256, nil), wantAlg: "ECDSA", wantSize: 256},
		{name: "ok/ecdsa-p384", csr: testpki.CSR(t, testpki.Key(t, "ecdsa-p384"), nil), wantAlg: "ECDSA", wantSize: 384},
		{name: "ok/ed25519", csr: testpki.CSR(t, testpki.Key(t, "ed25519"), nil), wantAlg: "Ed25519", wantSize: 256},
		{name: "ok/rsa-2048", csr: testpki.CSR(t, testpki.Key(t, "rsa-2048"), nil), wantAlg: "RSA", wantSize: 2048},
		{name: "ok/own-sans", csr: testpki.CSR(t, p256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: dns},
			DNSNames: []string{dns}, URIs: []*url.URL{spiffe}}), wantAlg: "ECDSA", wantSize: 256},
		{name: "fail/garbage", csr: []byte("not a csr"), want: rotor.EBadCSR},
		{name: "fail/bad-signature", csr: badSig, want: rotor.EBadCSR},
		{name: "fail/rsa-1024", csr: testpki.CSR(t, testpki.Key(t, "rsa-1024"), nil), want: rotor.EBadCSR},
		{name: "fail/ecdsa-p224", csr: testpki.CSR(t, testpki.Key(t, "ecdsa-p224"), nil), want: rotor.EBadCSR},
		{name: "fail/san-for-other-identity", csr: testpki.CSR(t, p256, &x509.CertificateRequest{
			DNSNames: []string{"admin.default.serviceaccount.identity.rotor.cluster.local"}}), want: rotor.EForbidden},
		{name: "fail/uri-for-other-identity", csr: testpki.CSR(t, p256, &x509.CertificateRequest{URIs: []*url.URL{other}}), want: rotor.EForbidden},
		{name: "fail/ip-san", csr: testpki.CSR(t, p256, &x509.CertificateRequest{IPAddresses: []net.IP{net.IPv4(10, 0, 0, 1)}}), want: rotor.EForbidden},
		{name: "fail/email-san", csr: testpki.CSR(t, p256, &x509.CertificateRequest{EmailAddresses: []string{"a@b.c"}}), want: rotor.EForbidden},
		{name: "fail/cn-other", csr: testpki.CSR(t, p256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "example.com"}}), want: rotor.EForbidden},
		{name: "fail/ca-request", csr: testpki.CSR(t, p256, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{
			{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Critical: true, Value: bc}}}), want: rotor.EForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := p.CheckCSR(tt.csr, webapp)
			if code := rotor.ErrorCodeOf(err); code != tt.want {
				t.Fatalf("CheckCSR code = %q (%v), want %q", code, err, tt.want)
			}
			if err != nil {
				return
			}
			if got.KeyAlgorithm != tt.wantAlg || got.KeySize != tt.wantSize {
				t.Errorf("key = %s/%d, want %s/%d", got.KeyAlgorithm, got.KeySize, tt.wantAlg, tt.wantSize)
			}
			if len(got.PublicKeySHA256) != 64 || len(got.CSRSHA256) != 64 {
				t.Errorf("digests %q %q are not SHA-256 hex", got.PublicKeySHA256, got.CSRSHA256)
			}
		})
	}
}

func TestPolicyTTL(t *testing.T) {
	p := testPolicy()
	tests := []struct {
		name      string
		requested time.Duration
		want      time.Duration
		wantCode  rotor.ErrorCode
	}{
		{name: "ok/default", requested: 0, want: 24 * time.Hour},
		{name: "ok/shorter", requested: time.Hour, want: time.Hour},
		{name: "ok/max", requested: 48 * time.Hour, want: 48 * time.Hour},
		{name: "fail/over-max", requested: 49 * time.Hour, wantCode: rotor.EInvalid},
		{name: "fail/under-min", requested: time.Millisecond, wantCode: rotor.EInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := p.TTL(tt.requested)
			if code := rotor.ErrorCodeOf(err); code != tt.wantCode {
				t.Fatalf("TTL code = %q, want %q", code, tt.wantCode)
			}
			if got != tt.want {
				t.Errorf("TTL = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*rotor.Policy)
		ok     bool
	}{
		{name: "ok/default", mutate: func(*rotor.Policy) {}, ok: true},
		{name: "fail/trust-domain-upper", mutate: func(p *rotor.Policy) { p.TrustDomain = "Cluster.Local" }},
		{name: "fail/max-below-default", mutate: func(p *rotor.Policy) { p.MaxTTL = time.Hour }},
		{name: "fail/ttl-zero", mutate: func(p *rotor.Policy) { p.DefaultTTL = 0 }},
		{name: "fail/negative-skew", mutate: func(p *rotor.Policy) { p.ClockSkew = -time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPolicy()
			tt.mutate(&p)
			if err := p.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestPolicyCRLURL(t *testing.T) {
	tests := []struct {
		name, url string
		ok        bool
	}{
		{"ok/https", "https://ca.example.com/v1/crl", true},
		{"ok/http-ip-port-slash", "http://10.0.0.1:8080/v1/crl/", true},
		{"ok/host-only", "https://ca.example.com", true},
		{"ok/ipv6-percent-encoded", "https://[::1]:8443/crl%20files", true},
		{"fail/path-only", "/v1/crl", false},
		{"fail/no-scheme", "ca.example.com/v1/crl", false},
		{"fail/ftp", "ftp://ca.example.com/crl", false},
		{"fail/no-host", "https:///v1/crl", false},
		{"fail/opaque", "https:ca.example.com", false},
		{"fail/query", "https://ca.example.com/v1/crl?x=1", false},
		{"fail/empty-query", "https://ca.example.com/v1/crl?", false},
		{"fail/fragment", "https://ca.example.com/v1/crl#top", false},
		{"fail/empty-fragment", "https://ca.example.com/v1/crl#", false},
		{"fail/user", "https://user@ca.example.com/v1/crl", false},
		{"fail/space", "https://ca.example.com/crl files", false},
		{"fail/not-ascii", "https://ca.exämple.com/v1/crl", false},
		{"fail/nul", "https://ca.example.com/\x00", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPolicy()
			p.CRLURL = tt.url
			err := p.Validate()
			if (err == nil) != tt.ok || err != nil && rotor.ErrorCodeOf(err) != rotor.EInvalid {
				t.Errorf("Validate() with CRL URL %q = %v, want ok=%v", tt.url, err, tt.ok)
			}
		})
	}
}

func TestCRLDistributionPoint(t *testing.T) {
	tests := []struct{ name, base, want string }{
		{"ok/base", "https://ca.example.com/v1/crl", "https://ca.example.com/v1/crl/0a1b"},
		{"ok/trailing-slash", "https://ca.example.com/v1/crl/", "https://ca.example.com/v1/crl/0a1b"},
		{"ok/none", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (rotor.Policy{CRLURL: tt.base}).CRLDistributionPoint("0a1b"); got != tt.want {
				t.Fatalf("CRLDistributionPoint = %q, want %q", got, tt.want)
			}
		})
	}
}
