package main

import (
	"bufio"
	"bytes"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/bench/load"
)

// inProcess runs bench's BenchmarkIssueInProcess (rotor.CA.Issue with no
// HTTP, on SQLite and on Postgres) for -d and returns one record per
// store, named in-process-<store>. Its CPU is the benchmark's own
// process's, not split out, so only issued/s is given.
func (h *harness) inProcess(round int) ([]record, error) {
	bin := filepath.Join(h.work, "bin", "bench.test")
	env := []string{"ROTOR_TEST_POSTGRES_URL=" + h.pgURL}
	out, err := run(env, bin, "-test.run", "^$", "-test.bench", "BenchmarkIssueInProcess",
		"-test.benchtime", h.cfg.duration.String())
	if err != nil {
		return nil, err
	}
	var recs []record
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// BenchmarkIssueInProcess/sqlite-2  6648  481322 ns/op  2078 issued/s
		if len(f) < 6 || !strings.HasPrefix(f[0], "BenchmarkIssueInProcess/") || f[5] != "issued/s" {
			continue
		}
		name := strings.TrimPrefix(f[0], "BenchmarkIssueInProcess/")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i] // the -GOMAXPROCS suffix
		}
		n, _ := strconv.Atoi(f[1])
		perSec, _ := strconv.ParseFloat(f[4], 64)
		recs = append(recs, record{Section: "throughput", System: "in-process-" + name, Round: round,
			Result: &load.Result{Issued: n, PerSecond: perSec, Conc: 64, Elapsed: time.Duration(float64(n) / perSec * float64(time.Second)),
				Errors: map[string]int{}}})
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("BenchmarkIssueInProcess printed no issued/s:\n%s", out)
	}
	return recs, nil
}
