package agent_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// checkProbes checks the agent's probes: /livez always 200 (a CA outage
// must not get the agent restarted), /readyz and its old name /healthz 200
// only with a valid certificate on disk, else 503.
func checkProbes(t *testing.T, a *agent.Agent, when string, valid bool) {
	t.Helper()
	want := map[bool]int{true: http.StatusOK, false: http.StatusServiceUnavailable}[valid]
	for path, want := range map[string]int{"/livez": http.StatusOK, "/readyz": want, "/healthz": want} {
		if code, _ := get(a, path); code != want {
			t.Errorf("%s %s = %d, want %d", path, when, code, want)
		}
	}
}

// metric reads one sample from /metrics, 0 if absent. A series named
// without labels matches the name with any labels (the certificate series
// carry the identity's).
func metric(t *testing.T, a *agent.Agent, series string) float64 {
	t.Helper()
	_, body := get(a, "/metrics")
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if name, labels, ok := strings.Cut(line, "{"); ok && !strings.Contains(series, "{") && name == series {
			_, line, _ = strings.Cut(labels, "} ")
			line = series + " " + line
		}
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", series, err)
			}
			return f
		}
	}
	return 0
}

// ready reads rotor_agent_certificate_ready_status for one condition of
// webapp's certificate, or of no identity yet (id zero).
func ready(t *testing.T, a *agent.Agent, id rotor.Identity, condition string) float64 {
	t.Helper()
	return metric(t, a, `rotor_agent_certificate_ready_status{condition="`+condition+`",namespace="`+
		id.Namespace+`",service_account="`+id.ServiceAccount+`"}`)
}

// failures reads rotor_agent_failures_total for one cause.
func failures(t *testing.T, a *agent.Agent, cause string) float64 {
	t.Helper()
	return metric(t, a, `rotor_agent_failures_total{cause="`+cause+`"}`)
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

// logRecorder keeps what an agent logs, passing it on to the test's
// output, so tests can check events and their attributes instead of
// messages.
type logRecorder struct {
	next slog.Handler

	mu      sync.Mutex
	records []logRecord
}

type logRecord struct {
	time  time.Time
	level slog.Level
	attrs map[string]any
}

// recordLogs makes cfg's agent log into the returned recorder.
func recordLogs(t *testing.T, cfg *agent.Config) *logRecorder {
	r := &logRecorder{next: testLogger(t).Handler()}
	cfg.Logger = slog.New(r)
	return r
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *logRecorder) Handle(ctx context.Context, rec slog.Record) error {
	attrs := map[string]any{}
	rec.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.Any()
		return true
	})
	r.mu.Lock()
	r.records = append(r.records, logRecord{time: rec.Time, level: rec.Level, attrs: attrs})
	r.mu.Unlock()
	return r.next.Handle(ctx, rec)
}

// WithAttrs and WithGroup are not used by the agent; attributes given
// through them would be lost.
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { panic("logRecorder: WithAttrs") }
func (r *logRecorder) WithGroup(string) slog.Handler      { panic("logRecorder: WithGroup") }

// events returns the records of one event, oldest first.
func (r *logRecorder) events(name string) []logRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []logRecord
	for _, rec := range r.records {
		if rec.attrs[rotor.LogEvent] == name {
			out = append(out, rec)
		}
	}
	return out
}

// after is the records logged after since.
func after(recs []logRecord, since time.Time) []logRecord {
	var out []logRecord
	for _, rec := range recs {
		if rec.time.After(since) {
			out = append(out, rec)
		}
	}
	return out
}

// readOnly makes dir refuse new entries, as a read-only volume would, and
// returns what makes it writable again (also run when the test ends). A
// chmod stops an ordinary user but not root, who bypasses permissions (and
// the tests run as root in CI), so root gets the immutable attribute
// instead (chattr +i): then even root's mkdir in dir fails with EPERM. The
// test is skipped where neither holds: no chattr, a file system without
// the attribute, no CAP_LINUX_IMMUTABLE.
func readOnly(t *testing.T, dir string) (restore func()) {
	t.Helper()
	lock, unlock := exec.Command("chmod", "0500", dir), exec.Command("chmod", "0700", dir)
	if os.Geteuid() == 0 {
		lock, unlock = exec.Command("chattr", "+i", dir), exec.Command("chattr", "-i", dir)
	}
	if out, err := lock.CombinedOutput(); err != nil {
		t.Skipf("cannot make %s read-only as uid %d: %v: %s", dir, os.Geteuid(), err, out)
	}
	var once sync.Once
	restore = func() {
		once.Do(func() {
			if out, err := unlock.CombinedOutput(); err != nil {
				t.Errorf("make %s writable again: %v: %s", dir, err, out)
			}
		})
	}
	t.Cleanup(restore)
	if err := os.Mkdir(filepath.Join(dir, "probe"), 0o700); err == nil {
		t.Skipf("%s is still writable for uid %d after %v", dir, os.Geteuid(), lock.Args)
	}
	return restore
}

// testClock is the real clock moved forward by what the test says, so a
// test can take the agent past a renewal point while the CA, which keeps
// the real time, still issues certificates valid then.
type testClock struct{ ahead atomic.Int64 }

func (c *testClock) now() time.Time          { return time.Now().Add(time.Duration(c.ahead.Load())) }
func (c *testClock) advance(d time.Duration) { c.ahead.Add(int64(d)) }
