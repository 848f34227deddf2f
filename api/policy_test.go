package api_test

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"net"
	"net/http"
	"net/url"
	"testing"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/testpki"
)

// policyCase is one row of the CSR policy table, driven end to end.
type policyCase struct {
	name    string
	key     string                                          // key kind; "" means ecdsa-p256
	tmpl    func() *x509.CertificateRequest                 // nil: empty subject
	body    func(t testing.TB, der []byte) (string, []byte) // content type and body; nil: JSON without ttl
	auth    http.Header                                     // nil: the env's static token
	chunked bool
	invalid bool // the request breaks openapi.yaml on purpose
	status  int
	code    rotor.ErrorCode // "" on success
}

var (
	otherID  = rotor.Identity{Namespace: "default", ServiceAccount: "billing"}
	ownNames = func() *x509.CertificateRequest {
		return &x509.CertificateRequest{Subject: pkix.Name{CommonName: webapp.DNSName(trustDomain)},
			DNSNames: []string{webapp.DNSName(trustDomain)}, URIs: []*url.URL{webapp.SPIFFEID(trustDomain)}}
	}
	basicConstraintsCA = func() *x509.CertificateRequest {
		v, _ := asn1.Marshal(struct{ IsCA bool }{true})
		return &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{
			{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Critical: true, Value: v}}}
	}
)

func policyCases() []policyCase {
	ttl := func(ttl string) func(testing.TB, []byte) (string, []byte) {
		return func(t testing.TB, der []byte) (string, []byte) { return "application/json", jsonBody(t, der, ttl) }
	}
	raw := func(contentType string, b []byte) func(testing.TB, []byte) (string, []byte) {
		return func(testing.TB, []byte) (string, []byte) { return contentType, b }
	}
	created, forbidden := http.StatusCreated, http.StatusForbidden
	return []policyCase{
		{name: "ok/ecdsa-p256", status: created},
		{name: "ok/ecdsa-p384", key: "ecdsa-p384", status: created},
		{name: "ok/ed25519", key: "ed25519", status: created},
		{name: "ok/rsa-2048", key: "rsa-2048", status: created},
		{name: "ok/own-sans", tmpl: ownNames, status: created},
		{name: "fail/rsa-1024", key: "rsa-1024", status: 400, code: rotor.EBadCSR},
		{name: "fail/ecdsa-p224", key: "ecdsa-p224", status: 400, code: rotor.EBadCSR},
		{name: "fail/bad-signature", body: func(t testing.TB, der []byte) (string, []byte) {
			bad := bytes.Clone(der)
			bad[len(bad)-3] ^= 0x55 // inside the signature's last integer
			return "application/pkcs10", bad
		}, status: 400, code: rotor.EBadCSR},
		{name: "fail/san-for-other-identity", tmpl: func() *x509.CertificateRequest {
			return &x509.CertificateRequest{DNSNames: []string{otherID.DNSName(trustDomain)}}
		}, status: forbidden, code: rotor.EForbidden},
		{name: "fail/ip-san", tmpl: func() *x509.CertificateRequest {
			return &x509.CertificateRequest{IPAddresses: []net.IP{net.IPv4(10, 0, 0, 1)}}
		}, status: forbidden, code: rotor.EForbidden},
		{name: "fail/email-san", tmpl: func() *x509.CertificateRequest {
			return &x509.CertificateRequest{EmailAddresses: []string{"webapp@example.com"}}
		}, status: forbidden, code: rotor.EForbidden},
		{name: "fail/ca-request", tmpl: basicConstraintsCA, status: forbidden, code: rotor.EForbidden},
		{name: "fail/cn-other", tmpl: func() *x509.CertificateRequest {
			return &x509.CertificateRequest{Subject: pkix.Name{CommonName: otherID.DNSName(trustDomain)}}
		}, status: forbidden, code: rotor.EForbidden},
		{name: "fail/ttl-over-max", body: ttl("1000h"), status: 400, code: rotor.EInvalid},
		{name: "fail/garbage", body: raw("application/json", []byte(`{"csr":"this is not a CSR"}`)),
			status: 400, code: rotor.EBadCSR},
		{name: "fail/garbage-der", body: raw("application/pkcs10", []byte{0x30, 0x03, 0x02, 0x01, 0x00}),
			status: 400, code: rotor.EBadCSR},
		{name: "fail/too-large", body: raw("application/pkcs10", bytes.Repeat([]byte("A"), 65<<10)),
			status: 413, code: rotor.ETooLarge},
		{name: "fail/too-large-chunked", body: raw("application/pkcs10", bytes.Repeat([]byte("A"), 65<<10)),
			chunked: true, status: 413, code: rotor.ETooLarge},
		{name: "fail/unsupported-media-type", body: func(_ testing.TB, der []byte) (string, []byte) {
			return "text/plain", csrPEM(der)
		}, invalid: true, status: 415, code: rotor.EUnsupportedMedia},
		{name: "fail/no-credentials", auth: http.Header{}, status: 401, code: rotor.EUnauthenticated},
		{name: "fail/bad-token", auth: bearer(rotor.TokenPrefix + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
			status: 401, code: rotor.EUnauthenticated},
	}
}

// TestCSRPolicy drives the CSR policy table's accepted requests through
// HTTPS into each real store and checks what they got; its refusals run
// in TestHostileRequests, with their refusal rows.
func TestCSRPolicy(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			url := b.url(t)
			e := newEnv(t, url, envConfig{})
			issued := 0
			for _, c := range policyCases() {
				if c.code != "" {
					continue
				}
				issued++
				t.Run(c.name, func(t *testing.T) { runPolicyCase(t, e, c) })
			}
			if got := countRows(t, url, "SELECT count(*) FROM issuances"); got != issued {
				t.Errorf("issuances rows: %d, want %d", got, issued)
			}
		})
	}
}

func runPolicyCase(t *testing.T, e *env, c policyCase) {
	if c.key == "" {
		c.key = "ecdsa-p256"
	}
	var tmpl *x509.CertificateRequest
	if c.tmpl != nil {
		tmpl = c.tmpl()
	}
	key := testpki.Key(t, c.key)
	der := testpki.CSR(t, key, tmpl)
	contentType, body := "application/json", jsonBody(t, der, "")
	if c.body != nil {
		contentType, body = c.body(t, der)
	}
	h := c.auth
	if h == nil {
		h = bearer(e.token)
	}
	h = h.Clone()
	h.Set("Content-Type", contentType)
	r := e.do(t, call{Method: http.MethodPost, Path: "/v1/certificates", Header: h, Body: body,
		Chunked: c.chunked, Invalid: c.invalid})
	if r.Status != c.status {
		t.Fatalf("status %d, want %d: %s", r.Status, c.status, r.Body)
	}
	if c.code == "" {
		checkIssued(t, e, r.Body, key, webapp)
		return
	}
	if p := r.problem(t); rotor.CodeFromProblemType(p.Type) != c.code {
		t.Errorf("problem type %s, want code %s", p.Type, c.code)
	}
	if bytes.Contains(r.Body, []byte("BEGIN CERTIFICATE")) {
		t.Errorf("a refusal carries a certificate: %s", r.Body)
	}
}
