package main

import (
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/testpki"
	"github.com/rotor-dev/rotor/linkerd"
	"github.com/rotor-dev/rotor/linkerd/identitypb"
)

// TestLinkerdListener: rotor-ca serve --linkerd-listen serves Certify
// beside the REST API, as a proxy meets it: TLS for the name its
// server_name event gives, a token, a CSR for the Linkerd name; the leaf
// chains to the bundle and its audit row says linkerd. An empty identity
// is InvalidArgument.
func TestLinkerdListener(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "rotor-data")
	root := filepath.Join(data, "root.crt")
	ca := serveCA(t, nil, root, "--data-dir", data, "--linkerd-listen", "127.0.0.1:0")
	ev := ca.WaitEvent(t, linkerd.EventServing, 30*time.Second)
	addr, _ := ev["addr"].(string)
	serverName, _ := ev["server_name"].(string)
	token := createToken(t, data, "emojivoto", "web")
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(
		&tls.Config{RootCAs: ca.Roots, ServerName: serverName, MinVersion: tls.VersionTLS12})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cl := identitypb.NewIdentityClient(conn)
	id := rotor.Identity{Namespace: "emojivoto", ServiceAccount: "web"}
	name, err := id.LinkerdName(rotor.DefaultLinkerdSuffix)
	if err != nil {
		t.Fatal(err)
	}
	key := testpki.Key(t, "ecdsa-p256")
	csr := testpki.CSR(t, key, &x509.CertificateRequest{DNSNames: []string{name}})
	if _, err := cl.Certify(t.Context(), &identitypb.CertifyRequest{Token: []byte(token),
		CertificateSigningRequest: csr}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("Certify without an identity: %v, want InvalidArgument", err)
	}
	resp, err := cl.Certify(t.Context(), &identitypb.CertifyRequest{Identity: name, Token: []byte(token),
		CertificateSigningRequest: csr})
	if err != nil {
		t.Fatalf("Certify: %v", err)
	}
	leaf, err := x509.ParseCertificate(resp.GetLeafCertificate())
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	for _, der := range resp.GetIntermediateCertificates() {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Roots, Intermediates: inter, DNSName: name,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("the Linkerd leaf does not verify for %s: %v", name, err)
	}
	if n := countRows(t, filepath.Join(data, "rotor.db"), `SELECT count(*) FROM issuances WHERE authenticator = 'linkerd'
		AND namespace = 'emojivoto' AND service_account = 'web'`); n != 1 {
		t.Fatalf("%d audit rows by linkerd, want 1", n)
	}
}
