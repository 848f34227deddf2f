package api_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"io"
	"net/http"
	"testing"
	"time"

	xacme "golang.org/x/crypto/acme"

	"github.com/rotor-dev/rotor"
)

// contractTransport holds every exchange an ACME client makes to
// openapi.yaml, as (*tlsServer).do does for the REST calls.
type contractTransport struct {
	t    testing.TB
	next http.RoundTripper
}

func (c contractTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	res, err := c.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	got, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(got))
	validate(c.t, call{Method: r.Method, Path: r.URL.Path, Header: r.Header, Body: body},
		&response{Status: res.StatusCode, Header: res.Header, Body: got})
	return res, nil
}

// TestACMEContract runs golang.org/x/crypto/acme through the whole flow,
// refusals included, with every request and answer held to openapi.yaml.
func TestACMEContract(t *testing.T) {
	e := newEnv(t, sqliteURL(t), envConfig{acme: true})
	ctx := t.Context()
	k, err := rotor.NewEABKey(nil, webapp, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateEABKey(ctx, k, testAction); err != nil {
		t.Fatal(err)
	}
	hc := e.client(nil)
	hc.Transport = contractTransport{t: t, next: hc.Transport}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c := &xacme.Client{Key: key, DirectoryURL: e.URL + "/acme/directory", HTTPClient: hc}
	if _, err := c.Register(ctx, &xacme.Account{ExternalAccountBinding: &xacme.ExternalAccountBinding{KID: k.KeyID, Key: k.HMAC}},
		xacme.AcceptTOS); err != nil {
		t.Fatalf("Register: %v", err)
	}
	if _, err := c.GetReg(ctx, ""); err != nil {
		t.Fatalf("GetReg: %v", err)
	}
	dns := webapp.DNSName(trustDomain)
	o, err := c.AuthorizeOrder(ctx, xacme.DomainIDs(dns))
	if err != nil {
		t.Fatalf("AuthorizeOrder: %v", err)
	}
	z, err := c.GetAuthorization(ctx, o.AuthzURLs[0])
	if err != nil {
		t.Fatalf("GetAuthorization: %v", err)
	}
	if _, err := c.Accept(ctx, z.Challenges[0]); err != nil {
		t.Fatalf("Accept: %v", err)
	}
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{dns}}, leafKey)
	chain, _, err := c.CreateOrderCert(ctx, o.FinalizeURL, csr, true)
	if err != nil {
		t.Fatalf("CreateOrderCert: %v", err)
	}
	if _, err := c.AuthorizeOrder(ctx, xacme.DomainIDs("db.default.serviceaccount.identity.rotor."+trustDomain)); err == nil {
		t.Fatal("an order for another identity's name was accepted")
	}
	if err := c.RevokeCert(ctx, nil, chain[0], xacme.CRLReasonSuperseded); err != nil {
		t.Fatalf("RevokeCert: %v", err)
	}
	leaf, _ := x509.ParseCertificate(chain[0])
	res, err := hc.Get(e.URL + "/acme/renewal-info/" + b64url(leaf.AuthorityKeyId) + "." + b64url(leaf.SerialNumber.Bytes()))
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("renewal info: %v %v", res, err)
	}
	res.Body.Close()
	if err := c.DeactivateReg(ctx); err != nil {
		t.Fatalf("DeactivateReg: %v", err)
	}
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// TestACMEOff: an API wired without ACME (serve --acme=false) answers
// /acme/ 404 with a Rotor problem, as the contract says.
func TestACMEOff(t *testing.T) {
	e := newEnv(t, sqliteURL(t), envConfig{})
	if r := e.do(t, call{Method: http.MethodGet, Path: "/acme/directory"}); r.Status != http.StatusNotFound {
		t.Fatalf("GET /acme/directory without ACME: %d, want 404", r.Status)
	}
}
