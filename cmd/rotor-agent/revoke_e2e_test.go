package main_test

import (
	"context"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	agentpkg "github.com/rotor-dev/rotor/agent"
	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/internal/e2etest"
	"github.com/rotor-dev/rotor/internal/testenv"
)

// TestRevokedCertificateReplaced drives the real binaries on each store:
// rotor-agent holds a 24h certificate and polls renewal info every second;
// an admin revokes the certificate with rotor-ca certificate revoke; the
// agent replaces it within a poll or so, by token (the revoked certificate
// is never presented), and runs the hook. The CA's Retry-After comes from
// ROTOR_RENEWAL_INFO_RETRY_AFTER, the flag's environment twin.
func TestRevokedCertificateReplaced(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test builds and runs binaries; skipped with -short")
	}
	t.Parallel()
	bins := e2etest.Build(t, t.TempDir(), "./cmd/rotor-ca", "./cmd/rotor-agent")
	stores := []struct {
		name string
		url  func(t *testing.T, data string) string
	}{
		{"sqlite", func(_ *testing.T, data string) string { return "sqlite://" + filepath.Join(data, "rotor.db") }},
		{"postgres", func(t *testing.T, _ string) string { return testenv.PostgresURL(t) }},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			work := t.TempDir()
			data := filepath.Join(work, "ca")
			replaced := revokeAndReplace(t, bins[0], bins[1], work, data, st.url(t, data))
			t.Logf("%s: revoked certificate replaced %v after rotor-ca certificate revoke returned", st.name,
				replaced.Round(time.Millisecond))
		})
	}
}

// revokeAndReplace runs the scenario in work with the CA's development
// PKI in data and its audit in storeURL, and returns how long after the
// revocation the agent wrote the new pair, by its own log.
func revokeAndReplace(t *testing.T, caBin, agentBin, work, data, storeURL string) time.Duration {
	store := []string{"--data-dir", data, "--store", storeURL}
	caLog, agentLog, hooks := filepath.Join(work, "ca.log"), filepath.Join(work, "agent.log"), filepath.Join(work, "hook.log")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("rotor-agent log:\n%s\nrotor-ca log:\n%s", e2etest.ReadFile(t, agentLog), e2etest.ReadFile(t, caLog))
		}
	})
	ca := e2etest.StartEnv(t, []string{"ROTOR_RENEWAL_INFO_RETRY_AFTER=45s"}, caLog, caBin,
		append([]string{"serve", "--listen", "127.0.0.1:0", "--log-format", "json"}, store...)...)
	caURL := ca.WaitEvent(t, rotor.EventServing, 30*time.Second)["addr"].(string)
	rootFile := filepath.Join(data, "root.crt")
	token := rotorCA(t, caBin, append([]string{"token", "create", "--namespace", "default", "--service-account", "webapp"}, store...)...)
	tokenFile := filepath.Join(work, "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	agent := e2etest.Start(t, agentLog, agentBin, "--ca-url", caURL, "--ca-bundle", rootFile, "--token-file", tokenFile,
		"--out-dir", filepath.Join(work, "out"), "--listen", "127.0.0.1:0", "--log-format", "json",
		"--renewal-info-interval", "1s", "--exec", `echo "$ROTOR_CERT_SERIAL" >> `+hooks)
	agentMetrics := "http://" + agent.WaitEvent(t, agentpkg.EventListening, 30*time.Second)["listen"].(string) + "/metrics"
	sample := func(series string) float64 {
		_, page := e2etest.HTTPGet(agentMetrics, nil)
		return e2etest.Sample(page, series)
	}
	serials := func() []string { return strings.Fields(e2etest.ReadFile(t, hooks)) }
	// Two answered polls with the certificate kept: its window is hours away.
	e2etest.WaitFor(t, "a certificate and two polls", 30*time.Second, func() bool {
		return len(serials()) == 1 && sample("rotor_agent_renewal_info_polls_total") >= 2
	})
	old := serials()[0]

	revokedAt := time.Now()
	rotorCA(t, caBin, append([]string{"certificate", "revoke", old, "--reason", "keyCompromise"}, store...)...)
	e2etest.WaitFor(t, "the revoked certificate replaced", 30*time.Second, func() bool { return len(serials()) == 2 })
	renewed := serials()[1]
	leaf, _, err := diskPair(filepath.Join(work, "out"))
	if err != nil || leaf.SerialNumber.Text(16) != renewed {
		t.Fatalf("disk holds %v (%v), the hook saw %s", leaf.SerialNumber, err, renewed)
	}

	root, err := rotor.ParseCertificates([]byte(e2etest.ReadFile(t, rootFile)))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root[0])
	c, err := client.New(client.Config{URL: caURL, Roots: roots})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := c.Certificate(context.Background(), renewed, client.Credentials{Token: token})
	if err != nil || rec.Authenticator != "token" {
		t.Errorf("the new certificate was issued by %q (%v), want token: the old one is revoked", rec.Authenticator, err)
	}
	if n := sample(`rotor_agent_failures_total{cause="unauthenticated"}`); n != 0 {
		t.Errorf("%v refused attempts: the agent presented the revoked certificate", n)
	}
	info, err := c.RenewalInfo(context.Background(), renewed)
	if err != nil || info.Window.Open(time.Now()) || info.RetryAfter != 45*time.Second {
		t.Errorf("renewal info of the new certificate: %+v, %v; want a window not yet open and Retry-After 45s", info, err)
	}
	written := e2etest.Events(t, agentLog, agentpkg.EventWritten)
	at, err := time.Parse(time.RFC3339Nano, written[len(written)-1]["time"].(string))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*e2etest.Proc{agent, ca} {
		if code := p.Stop(t); code != 0 {
			t.Errorf("%s exited %d on SIGTERM", p.Cmd.Path, code)
		}
	}
	return at.Sub(revokedAt)
}

// rotorCA runs a rotor-ca command that must succeed and returns its output.
func rotorCA(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rotor-ca %v: %v\n%s", args, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}
