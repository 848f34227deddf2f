package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v4"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/agent"
	"github.com/rotor-dev/rotor/internal/e2etest"
	"github.com/rotor-dev/rotor/internal/testenv"
)

// The monitoring files: alert rules, their promtool unit test, and the
// Grafana dashboard.
var (
	rulesFile     = filepath.Join(repoRoot, "deploy", "prometheus", "rotor.rules.yml")
	rulesTestFile = filepath.Join(repoRoot, "deploy", "prometheus", "rotor.rules.test.yml")
	dashboardFile = filepath.Join(repoRoot, "deploy", "grafana", "rotor.json")
)

// TestPrometheusRules checks the alert rules and runs their unit tests with
// promtool, Prometheus's own checker (Debian's prometheus package).
func TestPrometheusRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		testenv.Unavailable(t, "promtool", "apt-get install -y prometheus")
	}
	for _, args := range [][]string{{"check", "rules", rulesFile}, {"test", "rules", rulesTestFile}} {
		if out, err := exec.Command(promtool, args...).CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestMonitoringNamesExported runs a real rotor-ca and a real rotor-agent
// with a certificate, scrapes both, and fails for any rotor_ series an
// alert rule or a dashboard panel names that neither exports: a renamed
// metric must take its alerts and panels along.
func TestMonitoringNamesExported(t *testing.T) {
	s := startStack(t)
	exported := map[string]bool{}
	for _, page := range []string{s.caMetrics(t), s.agentMetrics(t)} {
		for name := range sampleNames(page) {
			exported[name] = true
		}
	}
	for _, want := range []string{"rotor_build_info", "rotor_issuer_expiration_timestamp_seconds",
		"rotor_root_expiration_timestamp_seconds", "rotor_agent_certificate_ready_status"} {
		if !exported[want] {
			t.Errorf("nobody exports %s", want)
		}
	}
	exprs := map[string][]string{rulesFile: ruleExprs(t), dashboardFile: dashboardExprs(t)}
	for file, list := range exprs {
		if len(list) == 0 {
			t.Errorf("%s has no expressions", file)
		}
		for _, expr := range list {
			for _, name := range metricName.FindAllString(expr, -1) {
				if !exported[name] {
					t.Errorf("%s: %s names %s, which neither rotor-ca nor rotor-agent exports", file, expr, name)
				}
			}
		}
	}
}

// metricName finds Rotor's series in a PromQL expression.
var metricName = regexp.MustCompile(`\brotor_[a-z0-9_]+\b`)

// sampleNames are the series names of a Prometheus text page.
func sampleNames(page string) map[string]bool {
	names := map[string]bool{}
	for line := range strings.Lines(page) {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		names[line[:strings.IndexAny(line, "{ ")]] = true
	}
	return names
}

// ruleExprs are the expr of every rule in the rules file.
func ruleExprs(t *testing.T) []string {
	t.Helper()
	var f struct {
		Groups []struct {
			Rules []struct{ Expr string } `yaml:"rules"`
		} `yaml:"groups"`
	}
	decodeFile(t, rulesFile, yaml.Unmarshal, &f)
	var out []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out = append(out, r.Expr)
		}
	}
	return out
}

// dashboardExprs are the expr of every panel target in the dashboard.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	decodeFile(t, dashboardFile, json.Unmarshal, &d)
	var out []string
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("%s: panel %q queries nothing", dashboardFile, p.Title)
		}
		for _, tg := range p.Targets {
			out = append(out, tg.Expr)
		}
	}
	return out
}

// decodeFile reads file into v with unmarshal (YAML or JSON), failing
// the test if it cannot.
func decodeFile(t *testing.T, file string, unmarshal func([]byte, any) error, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err == nil {
		err = unmarshal(b, v)
	}
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// TestJSONLogDurations: with --log-format json both binaries write
// durations as Go duration strings ("24h0m0s"), which people and log
// queries read, never as nanoseconds.
func TestJSONLogDurations(t *testing.T) {
	s := startStack(t)
	if got := s.serving["cert_ttl"]; got != "24h0m0s" {
		t.Errorf("rotor-ca's %s event has cert_ttl %#v, want \"24h0m0s\"", rotor.EventServing, got)
	}
	// An agent that cannot reach its CA logs how long until it retries.
	cat := loadCatalog(t)
	log := filepath.Join(t.TempDir(), "agent.log")
	p := e2etest.Start(t, log, filepath.Join(cat.bin, "rotor-agent"), "--ca-url", "https://127.0.0.1:1",
		"--ca-bundle", s.rootFile, "--token", "rotor_unused", "--out-dir", t.TempDir(),
		"--log-format", "json")
	failed := p.WaitEvent(t, agent.EventFailed, 30*time.Second)
	if d, ok := failed["retry_in"].(string); !ok || !isDuration(d) {
		t.Errorf("rotor-agent's %s event has retry_in %#v, want a duration string", agent.EventFailed, failed["retry_in"])
	}
}

// isDuration reports whether s reads as a Go duration with its unit.
func isDuration(s string) bool {
	_, err := time.ParseDuration(s)
	return err == nil && strings.ContainsAny(s, "hms")
}
