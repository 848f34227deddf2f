package agent_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/agent"
	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/internal/catest"
)

var webapp = rotor.Identity{Namespace: "default", ServiceAccount: "webapp"}

// testConfig is an agent for ca with a static token, no jitter to speak
// of and logs in the test's output.
func testConfig(t *testing.T, ca *catest.CA) agent.Config {
	t.Helper()
	bundle := filepath.Join(t.TempDir(), "root.crt")
	if err := os.WriteFile(bundle, ca.Bundle.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return agent.Config{CAURL: ca.URL, CABundleFile: bundle, Token: ca.Token(t, webapp), OutDir: t.TempDir(),
		KeyType: rotor.ECDSAP256, RenewBefore: agent.DefaultRenewBefore, RequestTimeout: 5 * time.Second,
		Logger: testLogger(t), Rand: func() float64 { return 0.5 }}
}

func newAgent(t *testing.T, cfg agent.Config) *agent.Agent {
	t.Helper()
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// start runs a in the background; the returned stop cancels it and checks
// it shut down cleanly.
func start(t *testing.T, a *agent.Agent) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run after cancel = %v, want nil", err)
		}
	}
}

// onDisk loads the files as a workload would, through ..data.
func onDisk(t *testing.T, dir string) (*tls.Certificate, string) {
	t.Helper()
	f, version, err := client.ReadFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatalf("files on disk: %v", err)
	}
	return &pair, version
}

// eventually polls cond until it holds; the limit only stops a hung test.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	limit := time.Now().Add(45 * time.Second)
	for !cond() {
		if time.Now().After(limit) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// get serves one request from the agent's handler.
func get(a *agent.Agent, path string) (int, string) {
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

// metric reads one sample from /metrics, 0 if absent.
func metric(t *testing.T, a *agent.Agent, series string) float64 {
	t.Helper()
	_, body := get(a, "/metrics")
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", series, err)
			}
			return f
		}
	}
	return 0
}

// hookLog makes --exec append each new certificate's serial to a file and
// returns the file.
func hookLog(t *testing.T, cfg *agent.Config) string {
	log := filepath.Join(t.TempDir(), "hook.log")
	cfg.Exec = `echo "$ROTOR_CERT_SERIAL" >> ` + log
	return log
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
