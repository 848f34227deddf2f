package linkerd_test

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"net"
	"net/url"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/catest"
	"github.com/rotor-dev/rotor/internal/testenv"
	"github.com/rotor-dev/rotor/internal/testpki"
	"github.com/rotor-dev/rotor/linkerd"
	"github.com/rotor-dev/rotor/linkerd/identitypb"
)

var (
	webapp = rotor.Identity{Namespace: "default", ServiceAccount: "webapp"}
	admin  = rotor.Identity{Namespace: "default", ServiceAccount: "admin"}
)

// name is id's Linkerd name under the default suffix.
func name(t testing.TB, id rotor.Identity) string {
	t.Helper()
	n, err := id.LinkerdName(rotor.DefaultLinkerdSuffix)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// stores are the audit stores the tests run on: SQLite, and Postgres
// (skipped without one, failed in CI).
var stores = map[string]func(t *testing.T) string{
	"sqlite":   func(*testing.T) string { return "" },
	"postgres": func(t *testing.T) string { return testenv.PostgresURL(t) },
}

// onEachStore runs test in parallel subtests against a CA serving
// Linkerd's API on each store, with a client trusting its roots.
func onEachStore(t *testing.T, test func(t *testing.T, ca *catest.CA, client identitypb.IdentityClient)) {
	for storeName, storeURL := range stores {
		t.Run(storeName, func(t *testing.T) {
			t.Parallel()
			ca := catest.New(t, catest.Options{StoreURL: storeURL(t), Linkerd: true})
			test(t, ca, dial(t, ca, ca.Roots))
		})
	}
}

// dial is a client of ca's Linkerd identity API built from identitypb,
// verifying the server as a proxy does: against roots, for the identity
// service's Linkerd name.
func dial(t testing.TB, ca *catest.CA, roots *x509.CertPool) identitypb.IdentityClient {
	t.Helper()
	conn, err := grpc.NewClient(ca.LinkerdAddr, grpc.WithTransportCredentials(credentials.NewTLS(
		&tls.Config{RootCAs: roots, ServerName: ca.LinkerdServerName, MinVersion: tls.VersionTLS12})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return identitypb.NewIdentityClient(conn)
}

// csr is a CSR of key naming dnsNames, with tmpl's other fields.
func csr(t testing.TB, key crypto.Signer, tmpl x509.CertificateRequest, dnsNames ...string) []byte {
	t.Helper()
	tmpl.DNSNames = dnsNames
	return testpki.CSR(t, key, &tmpl)
}

// TestCertify: the cases Linkerd's identity service checks, each answered
// with Linkerd's code, and a good request certified with the leaf Linkerd
// would issue, chained to the trust anchors and recorded with
// authenticator linkerd, on both stores.
func TestCertify(t *testing.T) {
	t.Parallel()
	onEachStore(t, func(t *testing.T, ca *catest.CA, client identitypb.IdentityClient) {
		token := ca.Token(t, webapp)
		key := catest.NewKey(t)
		own, other := name(t, webapp), name(t, admin)
		spiffe, _ := url.Parse("spiffe://" + catest.TrustDomain + "/ns/default/sa/webapp")
		good := csr(t, key, x509.CertificateRequest{}, own)
		tests := []struct {
			name            string
			identity, token string
			csr             []byte
			want            codes.Code
		}{
			{name: "ok/dns-san", identity: own, token: token, csr: good},
			{name: "ok/token-with-newline", identity: own, token: token + "\n",
				csr: csr(t, key, x509.CertificateRequest{Subject: pkix.Name{CommonName: own}}, own)},
			{name: "fail/empty-identity", token: token, csr: good, want: codes.InvalidArgument},
			{name: "fail/empty-token", identity: own, csr: good, want: codes.InvalidArgument},
			{name: "fail/empty-csr", identity: own, token: token, want: codes.InvalidArgument},
			{name: "fail/csr-not-der", identity: own, token: token, csr: []byte("fake-data"), want: codes.InvalidArgument},
			{name: "fail/csr-without-san", identity: own, token: token, csr: csr(t, key, x509.CertificateRequest{}),
				want: codes.FailedPrecondition},
			{name: "fail/csr-san-not-identity", identity: own, token: token, csr: csr(t, key, x509.CertificateRequest{}, other),
				want: codes.FailedPrecondition},
			{name: "fail/csr-two-sans", identity: own, token: token, csr: csr(t, key, x509.CertificateRequest{}, own, own),
				want: codes.FailedPrecondition},
			{name: "fail/csr-extra-uri", identity: own, token: token,
				csr: csr(t, key, x509.CertificateRequest{URIs: []*url.URL{spiffe}}, own), want: codes.FailedPrecondition},
			{name: "fail/csr-extra-ip", identity: own, token: token,
				csr: csr(t, key, x509.CertificateRequest{IPAddresses: []net.IP{net.IPv4(10, 0, 0, 1)}}, own), want: codes.FailedPrecondition},
			{name: "fail/csr-other-cn", identity: own, token: token,
				csr: csr(t, key, x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, own), want: codes.FailedPrecondition},
			{name: "fail/bad-token", identity: own, token: rotor.TokenPrefix + "AAAA", csr: good, want: codes.FailedPrecondition},
			{name: "fail/token-for-other-service-account", identity: other, token: token,
				csr: csr(t, key, x509.CertificateRequest{}, other), want: codes.FailedPrecondition},
			{name: "fail/admin-token", identity: own, token: ca.AdminToken(t), csr: good, want: codes.FailedPrecondition},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, err := client.Certify(context.Background(), &identitypb.CertifyRequest{Identity: tt.identity,
					Token: []byte(tt.token), CertificateSigningRequest: tt.csr})
				if got := status.Code(err); got != tt.want {
					t.Fatalf("code %v (%v), want %v", got, err, tt.want)
				}
				if err == nil {
					checkCertified(t, ca, resp, key, ca.Roots)
				}
			})
		}
	})
}

// checkCertified holds a response to what a proxy needs (a leaf for its
// name alone, chaining to the anchors, valid_until its NotAfter) and to its
// audit row, read back from the store.
func checkCertified(t testing.TB, ca *catest.CA, resp *identitypb.CertifyResponse, key crypto.Signer, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	leaf, err := x509.ParseCertificate(resp.GetLeafCertificate())
	if err != nil {
		t.Fatalf("leaf: %v", err)
	}
	inter := x509.NewCertPool()
	for _, der := range resp.GetIntermediateCertificates() {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatalf("intermediate: %v", err)
		}
		inter.AddCert(c)
	}
	own := name(t, webapp)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: own,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("leaf does not verify for %s: %v", own, err)
	}
	pub, _ := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !slices.Equal(leaf.DNSNames, []string{own}) || leaf.Subject.CommonName != own || len(leaf.URIs) != 0 ||
		!pub.Equal(leaf.PublicKey) || !resp.GetValidUntil().AsTime().Equal(leaf.NotAfter) {
		t.Fatalf("leaf %v CN %q URIs %v valid_until %v NotAfter %v", leaf.DNSNames, leaf.Subject.CommonName, leaf.URIs,
			resp.GetValidUntil().AsTime(), leaf.NotAfter)
	}
	row := ca.Record(t, hex.EncodeToString(leaf.SerialNumber.Bytes()))
	if row.Authenticator != linkerd.Authenticator || row.Identity != webapp || !slices.Equal(row.SANs, []string{own}) {
		t.Fatalf("audit row: authenticator %q identity %v SANs %v", row.Authenticator, row.Identity, row.SANs)
	}
	return leaf
}

// TestCertifyStoreDown: with the store gone, Certify is Unavailable (the
// token cannot be looked up, and nothing could be recorded), so proxies
// retry; on both stores.
func TestCertifyStoreDown(t *testing.T) {
	t.Parallel()
	onEachStore(t, func(t *testing.T, ca *catest.CA, client identitypb.IdentityClient) {
		req := &identitypb.CertifyRequest{Identity: name(t, webapp), Token: []byte(ca.Token(t, webapp)),
			CertificateSigningRequest: csr(t, catest.NewKey(t), x509.CertificateRequest{}, name(t, webapp))}
		if _, err := client.Certify(context.Background(), req); err != nil {
			t.Fatalf("before: %v", err)
		}
		ca.StopStore(t)
		if _, err := client.Certify(context.Background(), req); status.Code(err) != codes.Unavailable {
			t.Fatalf("store down: %v, want %v", err, codes.Unavailable)
		}
	})
}

// TestCodeTable: every core code has its own row, and every retryable
// one is a code proxies retry on.
func TestCodeTable(t *testing.T) {
	t.Parallel()
	for _, c := range rotor.ErrorCodes {
		g := linkerd.Code(c)
		if c.Retryable() && c != rotor.EInternal && c != rotor.ERateLimited && g != codes.Unavailable {
			t.Errorf("%s (retryable) is %v, want Unavailable", c, g)
		}
		if c != rotor.EInternal && g == codes.Internal {
			t.Errorf("%s has no row of its own", c)
		}
	}
	if g := linkerd.Code("no-such-code"); g != codes.Internal {
		t.Errorf("an unknown code is %v, want Internal", g)
	}
}

// TestCertifyAcrossIssuerSwap: proxies renewing certificates of a 15 s
// lifetime from several goroutines, on connections opened before and
// after, see no failed Certify while the issuer is swapped from A to B
// (anchors A and B, as during a root rotation); leaves come from both.
func TestCertifyAcrossIssuerSwap(t *testing.T) {
	t.Parallel()
	ca := catest.New(t, catest.Options{TTL: 15 * time.Second, Linkerd: true})
	b := testpki.New(t, testpki.Options{Name: "B"})
	anchors := x509.NewCertPool()
	anchors.AddCert(ca.Root)
	anchors.AddCert(b.Root)
	ca.SetTrust(t, ca.Issuer, ca.Root, b.Root)
	token := ca.Token(t, webapp)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	type result struct {
		issuers map[string]int
		calls   int
		err     error
	}
	results := make(chan result)
	swapped := make(chan struct{})
	const workers = 4
	for range workers {
		req := &identitypb.CertifyRequest{Identity: name(t, webapp), Token: []byte(token),
			CertificateSigningRequest: csr(t, catest.NewKey(t), x509.CertificateRequest{}, name(t, webapp))}
		// grpc.NewClient connects on first use: the second client's
		// handshake comes after the swap, with a TLS certificate from B.
		before, after := dial(t, ca, anchors), dial(t, ca, anchors)
		go func() {
			r := result{issuers: map[string]int{}}
			client := before
			for ; ; r.calls++ {
				resp, err := client.Certify(ctx, req)
				if err != nil {
					r.err = err
					break
				}
				leaf, err := x509.ParseCertificate(resp.GetLeafCertificate())
				if err != nil {
					r.err = err
					break
				}
				r.issuers[hex.EncodeToString(leaf.AuthorityKeyId)]++
				if r.issuers[b.Issuer.KeyID] >= 100 {
					break
				}
				select {
				case <-swapped:
					client = after
				default:
				}
			}
			results <- r
		}()
	}
	time.Sleep(time.Second)
	ca.SetTrust(t, b.Issuer, ca.Root, b.Root)
	close(swapped)
	total := 0
	for range workers {
		r := <-results
		if r.err != nil {
			t.Fatalf("a Certify failed after %d calls: %v", r.calls, r.err)
		}
		if r.issuers[ca.Issuer.KeyID] == 0 || r.issuers[b.Issuer.KeyID] < 100 {
			t.Errorf("leaves by issuer %v: want some from A and 100 from B", r.issuers)
		}
		total += r.calls
	}
	t.Logf("%d Certify calls, none failed", total)
}
