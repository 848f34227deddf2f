package main_test

import (
	"context"
	"crypto/x509"
	"net/http"
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
)

// certTTL is short enough to watch several renewals in seconds: the agent
// renews about two thirds in.
const certTTL = 3 * time.Second

// TestEndToEnd drives the real binaries as an operator would: rotor-ca on
// its embedded default (SQLite, file keys) with three-second certificates,
// and rotor-agent beside a pretend workload. It checks three renewals or
// more with the hook run once for each, a CA outage longer than a renewal
// interval that leaves the old pair on disk untouched, recovery when the
// CA is back, a clean SIGTERM, and --once issuing and then reusing.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test builds and runs binaries; skipped with -short")
	}
	bins := e2etest.Build(t, t.TempDir(), "./cmd/rotor-ca", "./cmd/rotor-agent")
	caBin, agentBin := bins[0], bins[1]
	work := t.TempDir()
	data, out := filepath.Join(work, "ca"), filepath.Join(work, "out")
	caArgs := []string{"serve", "--data-dir", data, "--log-format", "json", "--cert-ttl", certTTL.String()}
	ca := e2etest.Start(t, filepath.Join(work, "ca.log"), caBin, append(caArgs, "--listen", "127.0.0.1:0")...)
	caURL := ca.WaitEvent(t, rotor.EventServing, 30*time.Second)["addr"].(string)
	// The CA comes back after the outage where the agent knows it.
	caArgs = append(caArgs, "--listen", strings.TrimPrefix(caURL, "https://"))
	pemBytes, err := os.ReadFile(filepath.Join(data, "root.crt"))
	if err != nil {
		t.Fatal(err)
	}
	certs, err := rotor.ParseCertificates(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	root, roots := certs[0], x509.NewCertPool()
	roots.AddCert(root)
	token, err := exec.Command(caBin, "token", "create", "--data-dir", data,
		"--namespace", "default", "--service-account", "webapp").Output()
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	tokenFile := filepath.Join(work, "token")
	if err := os.WriteFile(tokenFile, token, 0o600); err != nil {
		t.Fatal(err)
	}

	hooks := filepath.Join(work, "hook.log")
	agentLog := filepath.Join(work, "agent.log")
	t.Cleanup(func() {
		if t.Failed() || testing.Verbose() {
			t.Logf("rotor-agent log:\n%s\nrotor-ca log:\n%s", e2etest.ReadFile(t, agentLog), e2etest.ReadFile(t, filepath.Join(work, "ca.log")))
		}
	})
	agent := e2etest.Start(t, agentLog, agentBin, "--ca-url", caURL, "--ca-bundle", filepath.Join(data, "root.crt"),
		"--token-file", tokenFile, "--out-dir", out, "--listen", "127.0.0.1:0", "--log-format", "json",
		"--exec", `echo "$ROTOR_CERT_SERIAL" >> `+hooks)
	agentAddr := agent.WaitEvent(t, agentpkg.EventListening, 30*time.Second)["listen"].(string)
	ctx, cancel := context.WithCancel(context.Background())
	pairErr := watchPairs(ctx, out)
	defer func() {
		cancel()
		if err := pairErr(); err != nil {
			t.Errorf("a reader saw a broken pair: %v", err)
		}
	}()
	serials := func() []string { return strings.Fields(e2etest.ReadFile(t, hooks)) }

	// Phase 1: a first certificate and three renewals.
	e2etest.WaitFor(t, "four certificates", 40*time.Second, func() bool { return len(serials()) >= 4 })
	_, metricsPage := e2etest.HTTPGet(caURL+"/metrics", roots)
	issuedBefore := e2etest.Sample(metricsPage, "rotor_issuances_total")

	// Phase 2: the CA is down past the certificate's expiry, which is
	// longer than a renewal interval; the pair on disk stays as it was.
	if code := ca.Stop(t); code != 0 {
		t.Errorf("rotor-ca exited %d on SIGTERM", code)
	}
	held, version, err := diskPair(out)
	if err != nil {
		t.Fatal(err)
	}
	downSince := time.Now()
	e2etest.WaitFor(t, "expiry during the outage", 30*time.Second, func() bool {
		leaf, v, err := diskPair(out)
		if err != nil || v != version || !leaf.Equal(held) {
			t.Fatalf("the pair on disk changed during the outage: %s -> %s (%v)", version, v, err)
		}
		return time.Now().After(held.NotAfter.Add(time.Second))
	})
	if code, _ := e2etest.HTTPGet("http://"+agentAddr+"/healthz", nil); code != http.StatusServiceUnavailable {
		t.Errorf("agent healthz with an expired certificate = %d, want 503", code)
	}
	_, agentMetrics := e2etest.HTTPGet("http://"+agentAddr+"/metrics", nil)
	if n := e2etest.Sample(agentMetrics, `rotor_agent_failures_total{cause="ca-unreachable"}`); n < 1 {
		t.Errorf("no unreachable failures counted during the outage:\n%s", agentMetrics)
	}
	outage := time.Since(downSince)
	if interval := certTTL * 2 / 3; outage <= interval {
		t.Errorf("outage of %v is not longer than a renewal interval (%v)", outage, interval)
	}

	// Phase 3: the CA is back on the same data and address.
	ca = e2etest.Start(t, filepath.Join(work, "ca.log"), caBin, caArgs...)
	n := len(serials())
	e2etest.WaitFor(t, "a certificate after the outage", 30*time.Second, func() bool { return len(serials()) > n })
	e2etest.WaitFor(t, "the new pair on disk", 10*time.Second, func() bool {
		leaf, _, err := diskPair(out)
		return err == nil && !leaf.Equal(held)
	})
	if code, _ := e2etest.HTTPGet("http://"+agentAddr+"/healthz", nil); code != http.StatusOK {
		t.Errorf("agent healthz after recovery = %d, want 200", code)
	}
	if code := agent.Stop(t); code != 0 {
		t.Errorf("rotor-agent exited %d on SIGTERM", code)
	}
	_, metricsPage = e2etest.HTTPGet(caURL+"/metrics", roots)
	issued := int(issuedBefore + e2etest.Sample(metricsPage, "rotor_issuances_total"))

	// One hook run per certificate, each a distinct serial the CA knows.
	got := serials()
	logged := len(e2etest.Events(t, agentLog, agentpkg.EventWritten))
	if len(got) != issued || logged != issued {
		t.Errorf("CA issued %d certificates; the hook ran %d times and the agent logged %d", issued, len(got), logged)
	}
	c, err := client.New(client.Config{URL: caURL, Roots: roots})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, s := range got {
		if seen[s] {
			t.Errorf("hook ran twice for %s", s)
		}
		seen[s] = true
		if _, err := c.Certificate(context.Background(), s, client.Credentials{Token: strings.TrimSpace(string(token))}); err != nil {
			t.Errorf("CA does not know serial %s: %v", s, err)
		}
	}
	t.Logf("%d certificates of %v, outage of %v survived", len(got), certTTL, outage.Round(time.Millisecond))

	// Phase 4: --once with a pinned first contact issues, then reuses.
	onceOut, onceHooks := filepath.Join(work, "once"), filepath.Join(work, "once-hook.log")
	for run := range 2 {
		cmd := exec.Command(agentBin, "--once", "--ca-url", caURL, "--ca-fingerprint", rotor.Fingerprint(root.Raw),
			"--token-file", tokenFile, "--out-dir", onceOut, "--ttl", "1h",
			"--exec", `echo "$ROTOR_CERT_SERIAL" >> `+onceHooks)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("--once run %d: %v\n%s", run+1, err, b)
		}
	}
	leaf, _, err := diskPair(onceOut)
	if err != nil {
		t.Fatalf("--once left no valid pair: %v", err)
	}
	if life := time.Until(leaf.NotAfter); life < 50*time.Minute || life > time.Hour {
		t.Errorf("--once certificate valid for %v, asked for 1h", life)
	}
	if runs := strings.Fields(e2etest.ReadFile(t, onceHooks)); len(runs) != 1 || runs[0] != leaf.SerialNumber.Text(16) {
		t.Errorf("--once hook ran for %v; want once, the second run reusing the certificate", runs)
	}
	if code := ca.Stop(t); code != 0 {
		t.Errorf("rotor-ca exited %d on SIGTERM", code)
	}
}
