package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/internal/e2etest"
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
// renewals on the other replica at once; denying an identity on one
// replica stops its renewals on the other within 2s.
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
			// certificates fail on the next request, anywhere.
			st.exec(t, storeURL(args), `DELETE FROM static_tokens`)
			_, err = obtain(t, c2, client.IssueRequest{ClientCertificate: renewed.tls()})
			if rotor.ErrorCodeOf(err) != rotor.EUnauthenticated || !strings.Contains(err.Error(), "was deleted") {
				t.Fatalf("renewal after the token was deleted: %v, want unauthenticated", err)
			}

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
