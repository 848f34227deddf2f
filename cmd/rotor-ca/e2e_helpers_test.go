package main

import (
	"bufio"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/internal/e2etest"
)

// caRun is a "rotor-ca serve" a test started, logging JSON to a file.
type caRun struct {
	*e2etest.Proc
	URL   string
	Roots *x509.CertPool // verifies the CA's serving certificate
}

// serveCA starts "rotor-ca serve args..." on a port of its choosing (unless
// args give --listen), learns the address from its serving event, and
// trusts the roots in rootFile, which exists once it serves (the
// development PKI makes it at start). It is the one way these tests start
// the CA.
func serveCA(t *testing.T, env []string, rootFile string, args ...string) *caRun {
	t.Helper()
	if !slices.Contains(args, "--listen") {
		args = append([]string{"--listen", "127.0.0.1:0"}, args...)
	}
	args = append([]string{"serve", "--log-format", "json"}, args...)
	logFile := filepath.Join(t.TempDir(), "ca.log")
	c := &caRun{Proc: e2etest.StartEnv(t, env, logFile, rotorCA, args...), Roots: x509.NewCertPool()}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("rotor-ca log:\n%s", e2etest.ReadFile(t, logFile))
		}
	})
	c.URL, _ = c.WaitEvent(t, rotor.EventServing, 30*time.Second)["addr"].(string)
	for _, r := range readCerts(t, rootFile) {
		c.Roots.AddCert(r)
	}
	if code, _ := e2etest.HTTPGet(c.URL+"/healthz", c.Roots); code != http.StatusOK {
		t.Fatalf("rotor-ca at %s serves, but /healthz answers %d", c.URL, code)
	}
	return c
}

// client is an API client trusting the roots serveCA was given.
func (c *caRun) client(t *testing.T) *client.Client {
	t.Helper()
	cl, err := client.New(client.Config{URL: c.URL, Roots: c.Roots, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// metric reads one series from /metrics.
func (c *caRun) metric(t *testing.T, series string) float64 {
	t.Helper()
	code, page := e2etest.HTTPGet(c.URL+"/metrics", c.Roots)
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	return e2etest.Sample(page, series)
}

// reloads is how many reloads have ended with result (ok, unchanged,
// refused).
func (c *caRun) reloads(t *testing.T, result string) float64 {
	return c.metric(t, `rotor_trust_reloads_total{result="`+result+`"}`)
}

// hup sends SIGHUP and waits until the CA has finished that reload.
func (c *caRun) hup(t *testing.T) {
	t.Helper()
	before := c.allReloads(t)
	if err := c.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	e2etest.WaitFor(t, "the reload to finish", 30*time.Second, func() bool { return c.allReloads(t) > before })
}

func (c *caRun) allReloads(t *testing.T) float64 {
	return c.reloads(t, "ok") + c.reloads(t, "unchanged") + c.reloads(t, "refused")
}

// logLevels counts the CA's JSON log lines by level.
func (c *caRun) logLevels(t *testing.T) map[string]int {
	t.Helper()
	n := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(e2etest.ReadFile(t, c.Log)))
	for sc.Scan() {
		var line struct{ Level string }
		if json.Unmarshal(sc.Bytes(), &line) == nil {
			n[line.Level]++
		}
	}
	return n
}

// issue gets a certificate for a new P-256 key with a bearer token.
func issue(ctx context.Context, c *client.Client, token string) (*client.Issued, error) {
	key, err := rotor.GenerateKey(rotor.ECDSAP256, nil)
	if err != nil {
		return nil, err
	}
	return issueKey(ctx, c, key, client.IssueRequest{Token: token})
}

// issueKey sends req with a CSR for key.
func issueKey(ctx context.Context, c *client.Client, key crypto.Signer, req client.IssueRequest) (*client.Issued, error) {
	csr, err := client.NewCSR(key)
	if err != nil {
		return nil, err
	}
	req.CSR = csr
	return c.Issue(ctx, req)
}

// verifyIssued checks that a leaf chains through its own chain to root.
func verifyIssued(got *client.Issued, root *x509.Certificate) error {
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root)
	for _, c := range got.Chain {
		inter.AddCert(c)
	}
	_, err := got.Leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return err
}

// initCA runs "rotor-ca init --data-dir dir args..." and fails the test
// unless it succeeds.
func initCA(t *testing.T, env []string, dir string, args ...string) string {
	t.Helper()
	out, errOut, code := rotorCACmd(t, env, append([]string{"init", "--data-dir", dir}, args...)...)
	if code != 0 {
		t.Fatalf("init %v: exit %d\n%s", args, code, errOut)
	}
	return out
}

func readCerts(t *testing.T, path string) []*x509.Certificate {
	t.Helper()
	pemBytes, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := rotor.ParseCertificates(pemBytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return certs
}

// needTools fails the test unless each tool (openssl, curl) is installed.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed: apt-get install -y %s", tool, tool)
		}
	}
}

// runIn runs a command as a user would in dir, and fails the test unless
// it succeeds; it returns what the command printed.
func runIn(t *testing.T, dir, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return out
}
