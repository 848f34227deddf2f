package main

import (
	"context"
	"debug/buildinfo"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// summary is one system's medians over its runs.
type summary struct {
	perSec        float64
	p50, p99      time.Duration
	cpu, pgCPU    time.Duration
	runs, errors  int
	errorsByCause map[string]int
}

// summarize groups runs by system, in first-seen order.
func summarize(all []record) ([]string, map[string]*summary) {
	var order []string
	vals := map[string][]record{}
	for _, r := range all {
		if _, ok := vals[r.System]; !ok {
			order = append(order, r.System)
		}
		vals[r.System] = append(vals[r.System], r)
	}
	out := map[string]*summary{}
	for name, rs := range vals {
		var ps []float64
		var p50, p99, cpu, pg []time.Duration
		s := &summary{runs: len(rs), errorsByCause: map[string]int{}}
		for _, r := range rs {
			ps, p50, p99 = append(ps, r.PerSecond), append(p50, r.P50), append(p99, r.P99)
			cpu, pg = append(cpu, r.ServerCPU), append(pg, r.PostgresCPU)
			for k, v := range r.Errors {
				s.errors += v
				s.errorsByCause[k] += v
			}
		}
		s.perSec, s.p50, s.p99, s.cpu, s.pgCPU = median(ps), median(p50), median(p99), median(cpu), median(pg)
		out[name] = s
	}
	return order, out
}

// throughputTable is the markdown of the throughput section: medians,
// then the ratios issue 13 sets targets for.
func throughputTable(all []record, c config) string {
	order, sum := summarize(all)
	var b strings.Builder
	fmt.Fprintf(&b, "c=%d, %s runs, %d interleaved rounds, medians:\n\n", c.conc, c.duration, c.rounds)
	b.WriteString("| system | issued/s | p50 ms | p99 ms | server CPU per cert | Postgres CPU per cert | errors |\n|---|---|---|---|---|---|---|\n")
	for _, name := range order {
		s := sum[name]
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s | %s | %s |\n", name, s.perSec, msText(s.p50), msText(s.p99),
			us(s.cpu), us(s.pgCPU), errorsText(s.errorsByCause))
	}
	b.WriteString("\n| ratio | value | target |\n|---|---|---|\n")
	ratio := func(label, a, bName string, p99 bool, target string) {
		x, y := sum[a], sum[bName]
		if x == nil || y == nil || y.perSec == 0 || (p99 && y.p99 == 0) {
			return // not measured in this run (no SoftHSM2; in-process has no latencies)
		}
		v := x.perSec / y.perSec
		if p99 {
			v = float64(x.p99) / float64(y.p99)
		}
		fmt.Fprintf(&b, "| %s | %.2f | %s |\n", label, v, target)
	}
	ratio("Rotor Postgres / bare CA, issued/s", "rotor-postgres", "bare-ca", false, ">= 0.85")
	ratio("Rotor Postgres / bare CA, p99", "rotor-postgres", "bare-ca", true, "<= 1.2")
	ratio("Rotor SQLite / bare CA, issued/s", "rotor-sqlite", "bare-ca", false, "within 10% of Postgres's")
	ratio("Rotor SQLite / Rotor Postgres, issued/s", "rotor-sqlite", "rotor-postgres", false, "0.9-1.1")
	ratio("Rotor SoftHSM2 / Rotor file signer (Postgres), issued/s", "rotor-softhsm-postgres", "rotor-postgres", false, ">= 0.67 (within 1.5x)")
	ratio("Rotor Postgres over HTTPS / in-process (no HTTP), issued/s", "rotor-postgres", "in-process-postgres", false, "")
	ratio("bare CA / HTTPS no-op, issued/s", "bare-ca", "noop", false, "")
	return b.String()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// msText is d in milliseconds, "-" when not measured.
func msText(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", ms(d))
}

func us(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%d us", d.Microseconds())
}

// errorsText is errors by cause, "0" for none.
func errorsText(m map[string]int) string {
	if len(m) == 0 {
		return "0"
	}
	return strings.Trim(fmt.Sprint(m), "map[]")
}

// machine describes where the figures came from.
func (h *harness) machine(ctx context.Context) string {
	model := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	var pgVersion string
	if err := h.pg.QueryRow(ctx, "SHOW server_version").Scan(&pgVersion); err != nil {
		pgVersion = "unknown: " + err.Error()
	}
	// The systems' Go, not this harness's: `go run` may build the harness
	// with another toolchain than the one GOTOOLCHAIN gives the binaries.
	goVersion := "unknown"
	if info, err := buildinfo.ReadFile(h.bin("rotor-ca")); err == nil {
		goVersion = info.GoVersion
	}
	var fsync, syncCommit string
	_ = h.pg.QueryRow(ctx, "SHOW fsync").Scan(&fsync)
	_ = h.pg.QueryRow(ctx, "SHOW synchronous_commit").Scan(&syncCommit)
	return fmt.Sprintf("- CPU: %s, %d cores (nproc), shared with other work: figures are noisy, compare ratios within one run\n"+
		"- Go: %s; PostgreSQL %s (fsync=%s, synchronous_commit=%s) on 127.0.0.1\n- run: %s\n",
		model, runtime.NumCPU(), goVersion, pgVersion, fsync, syncCommit, time.Now().UTC().Format(time.DateTime+" UTC"))
}

// writeSections replaces the text between "<!-- bench:NAME -->" and
// "<!-- /bench:NAME -->" in path with sections[NAME], for every section
// given; a section whose markers are missing is an error, so a figure is
// never silently dropped.
func writeSections(path string, sections map[string]string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	doc := string(b)
	for name, body := range sections {
		open, end := "<!-- bench:"+name+" -->", "<!-- /bench:"+name+" -->"
		i, j := strings.Index(doc, open), strings.Index(doc, end)
		if i < 0 || j < i {
			return fmt.Errorf("%s: no %s ... %s markers", path, open, end)
		}
		doc = doc[:i+len(open)] + "\n" + strings.TrimSpace(body) + "\n" + doc[j:]
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}
