package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/internal/e2etest"
	"github.com/rotor-dev/rotor/internal/testpki"
)

// holder is a workload's key and certificate, to renew over mTLS with.
type holder struct {
	key    crypto.Signer
	issued *client.Issued
}

func (h holder) tls() *tls.Certificate {
	c := &tls.Certificate{PrivateKey: h.key, Leaf: h.issued.Leaf}
	c.Certificate = append(c.Certificate, h.issued.Leaf.Raw)
	for _, ch := range h.issued.Chain {
		c.Certificate = append(c.Certificate, ch.Raw)
	}
	return c
}

// obtain issues a certificate for a new key with req (a token or a
// client certificate).
func obtain(t *testing.T, c *client.Client, req client.IssueRequest) (holder, error) {
	t.Helper()
	key, err := rotor.GenerateKey(rotor.ECDSAP256, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := issueKey(context.Background(), c, key, req)
	return holder{key: key, issued: got}, err
}

// TestTakeBackAcrossReplicas runs two replicas on one store, on each
// backend. Deleting a workload's token with plain SQL stops its mTLS
// renewals on the other replica within 2s, and so does denying an
// identity on one replica.
func TestTakeBackAcrossReplicas(t *testing.T) {
	t.Parallel()
	for _, st := range auditStores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			data := filepath.Join(t.TempDir(), "rotor-data")
			args := st.args(t, data)
			root := filepath.Join(data, "root.crt")
			one := serveCA(t, nil, root, args...)
			two := serveCA(t, nil, root, args...)
			c1, c2 := one.client(t), two.client(t)
			web := createTokenWith(t, "shop", "web", args...)
			first, err := obtain(t, c1, client.IssueRequest{Token: web})
			if err != nil {
				t.Fatal(err)
			}
			renewed, err := obtain(t, c2, client.IssueRequest{ClientCertificate: first.tls()})
			if err != nil {
				t.Fatalf("renewal on the second replica: %v", err)
			}

			// The token is deleted behind the CA's back: renewals of its
			// certificates fail anywhere once the replicas' cached token
			// lookups are a --deny-list-refresh (1s) old.
			st.exec(t, storeURL(args), `DELETE FROM static_tokens`)
			deleted := time.Now()
			e2etest.WaitFor(t, "the second replica to refuse renewals from the deleted token", 2*time.Second, func() bool {
				_, err = obtain(t, c2, client.IssueRequest{ClientCertificate: renewed.tls()})
				return rotor.ErrorCodeOf(err) == rotor.EUnauthenticated && strings.Contains(err.Error(), "was deleted")
			})
			t.Logf("%s: token deleted, renewals refused after %v", st.name, time.Since(deleted).Round(time.Millisecond))

			api := createTokenWith(t, "shop", "api", args...)
			apiCert, err := obtain(t, c1, client.IssueRequest{Token: api})
			if err != nil {
				t.Fatal(err)
			}
			admin := createAdminToken(t, args...)
			denied := time.Now()
			postAdmin(t, one, admin, "/v1/identities/shop/api/deny", `{"reason": "compromised host"}`, http.StatusOK)
			var lastErr error
			e2etest.WaitFor(t, "the second replica to refuse the denied identity", 2*time.Second, func() bool {
				_, lastErr = obtain(t, c2, client.IssueRequest{ClientCertificate: apiCert.tls()})
				return rotor.ErrorCodeOf(lastErr) == rotor.EDenied
			})
			t.Logf("%s: denied on one replica, refused on the other after %v", st.name, time.Since(denied).Round(time.Millisecond))
			if _, err := obtain(t, c2, client.IssueRequest{Token: api}); rotor.ErrorCodeOf(err) != rotor.EDenied {
				t.Errorf("token issuance for the denied identity: %v, want identity-denied", err)
			}
			refusals := st.count(t, storeURL(args), `SELECT count(*) FROM refusals WHERE reason = 'identity-denied'`)
			if refusals < 2 {
				t.Errorf("%d identity-denied refusal rows, want one per refused request", refusals)
			}
		})
	}
}

// createAdminToken makes an admin token in the store args name.
func createAdminToken(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := rotorCACmd(t, nil, append([]string{"token", "create", "--admin", "--name", "e2e-admin"}, args...)...)
	if code != 0 {
		t.Fatalf("token create --admin: exit %d: %s", code, errOut)
	}
	return strings.TrimSpace(out)
}

// postAdmin sends an admin action to ca and wants status.
func postAdmin(t *testing.T, ca *caRun, token, path, body string, status int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ca.URL+path, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Roots}}, Timeout: 10 * time.Second}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != status {
		t.Fatalf("POST %s: %d, want %d", path, resp.StatusCode, status)
	}
}

// TestAdminClientCA: with --admin-client-ca, a client certificate from that
// separate CA takes admin actions; a workload's may not; and the workload's
// own root is refused as the admin CA at start.
func TestAdminClientCA(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	data := filepath.Join(work, "rotor-data")
	now := time.Now()
	opsRoot, opsKey := testpki.Root(t, "Ops CA", rotor.ECDSAP256, time.Hour, now.Add(-time.Minute))
	opsFile := filepath.Join(work, "ops-ca.pem")
	if err := os.WriteFile(opsFile, rotor.EncodeCertificates([]*x509.Certificate{opsRoot}), 0o644); err != nil {
		t.Fatal(err)
	}
	ca := serveCA(t, nil, filepath.Join(data, "root.crt"), "--data-dir", data, "--admin-client-ca", opsFile)
	key := testpki.Key(t, "ecdsa-p256")
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "alice"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, opsRoot, key.Public(), opsKey)
	if err != nil {
		t.Fatal(err)
	}
	operator := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	web := createToken(t, data, "shop", "web")
	workload, err := obtain(t, ca.client(t), client.IssueRequest{Token: web})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		cert   *tls.Certificate
		status int
	}{{"workload certificate", workload.tls(), http.StatusForbidden}, {"operator certificate", operator, http.StatusOK}} {
		req, _ := http.NewRequest(http.MethodPost, ca.URL+"/v1/identities/shop/web/deny",
			strings.NewReader(`{"reason": "drill"}`))
		req.Header.Set("Content-Type", "application/json")
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: ca.Roots, Certificates: []tls.Certificate{*c.cert}}}}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("deny with the %s: %d, want %d", c.name, resp.StatusCode, c.status)
		}
	}
	if n := countRows(t, filepath.Join(data, "rotor.db"), `SELECT count(*) FROM admin_actions
		WHERE action = 'identity.deny' AND actor_kind = 'admin-mtls' AND actor LIKE 'CN=alice (cert:%'`); n != 1 {
		t.Errorf("%d deny actions by the operator's certificate in admin_actions, want 1", n)
	}
	ca.Stop(t)
	_, errOut, code := rotorCACmd(t, nil, "serve", "--data-dir", data, "--listen", "127.0.0.1:0",
		"--admin-client-ca", filepath.Join(data, "root.crt"))
	if code != 2 || !strings.Contains(errOut, "every workload would be an admin") {
		t.Errorf("serve with the workload root as admin CA: exit %d: %s", code, errOut)
	}
}
