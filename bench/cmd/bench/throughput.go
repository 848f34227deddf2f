package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/rotor-dev/rotor/bench/load"
	"github.com/rotor-dev/rotor/bench/procstat"
)

// record is one run's JSON line.
type record struct {
	Section string `json:"section"`
	System  string `json:"system"`
	Round   int    `json:"round"`
	*load.Result
	// ServerCPU is the CPU the system's own processes used per
	// certificate, PostgresCPU that of its database's backends.
	ServerCPU   time.Duration `json:"server_cpu_per_cert_ns"`
	PostgresCPU time.Duration `json:"postgres_cpu_per_cert_ns,omitempty"`
}

// emit prints r as one JSON line on stdout.
func emit(r any) {
	b, _ := json.Marshal(r)
	fmt.Fprintln(os.Stdout, string(b))
}

// throughput starts every system, then measures them interleaved.
func (h *harness) throughput(ctx context.Context) error {
	defer h.stopFrom(len(h.stops))
	systems, err := h.throughputSystems()
	if err != nil {
		return err
	}
	bodies, err := load.Bodies(h.cfg.csrs)
	if err != nil {
		return err
	}
	var all []record
	for round := range h.cfg.rounds {
		for _, s := range systems {
			r, err := h.measure(ctx, s, load.Config{Conc: h.cfg.conc, Duration: h.cfg.duration}, bodies)
			if err != nil {
				return fmt.Errorf("%s round %d: %w", s.name, round, err)
			}
			r.Section, r.Round = "throughput", round
			emit(r)
			all = append(all, *r)
		}
		recs, err := h.inProcess(round)
		if err != nil {
			return fmt.Errorf("in-process round %d: %w", round, err)
		}
		for _, r := range recs {
			emit(r)
		}
		all = append(all, recs...)
	}
	h.doc["throughput"] = throughputTable(all, h.cfg)
	fmt.Fprintln(os.Stderr, h.doc["throughput"])
	return nil
}

// throughputSystems starts the ceilings and each rotor-ca variant.
func (h *harness) throughputSystems() ([]*system, error) {
	var out []*system
	for _, c := range [][2]string{{"noop", "noop"}, {"bare-ca", "bare"}} {
		s, err := h.startCeiling(c[0], c[1])
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	opts := []rotorOpts{{name: "rotor-postgres", postgres: true}, {name: "rotor-sqlite"}}
	env, initArgs, ok, err := h.softHSM()
	if err != nil {
		return nil, fmt.Errorf("softhsm: %w", err)
	}
	if ok {
		opts = append(opts, rotorOpts{name: "rotor-softhsm-postgres", postgres: true, env: env, initArgs: initArgs})
	} else {
		h.log.Warn("SoftHSM2 not installed: no SoftHSM run")
	}
	for _, o := range opts {
		s, err := h.startRotor(o)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.name, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// measure runs one load against s and charges it the CPU its processes
// and its Postgres backends used meanwhile.
func (h *harness) measure(ctx context.Context, s *system, c load.Config, bodies [][]byte) (*record, error) {
	c.URLs, c.Roots, c.Token = s.urls, s.roots, s.token
	if c.CSRs == 0 {
		c.CSRs = len(bodies)
	}
	pgBefore, err := h.pgCPU(ctx, s.db)
	if err != nil {
		return nil, err
	}
	cpuBefore := procsCPU(s.procs)
	res, err := load.Run(ctx, c, bodies)
	if err != nil {
		return nil, err
	}
	cpu := procsCPU(s.procs) - cpuBefore
	pgAfter, err := h.pgCPU(ctx, s.db)
	if err != nil {
		return nil, err
	}
	r := &record{System: s.name, Result: res}
	if res.Issued > 0 {
		r.ServerCPU = cpu / time.Duration(res.Issued)
		r.PostgresCPU = used(pgBefore, pgAfter) / time.Duration(res.Issued)
	}
	return r, nil
}

// procsCPU is the CPU time the processes have used.
func procsCPU(ps []*proc) time.Duration {
	pids := make([]int, len(ps))
	for i, p := range ps {
		pids[i] = p.pid()
	}
	return procstat.SumCPU(pids)
}

// pgCPU reads the CPU time of db's backends, by PID; none without db.
func (h *harness) pgCPU(ctx context.Context, db string) (map[int]time.Duration, error) {
	out := map[int]time.Duration{}
	if db == "" {
		return out, nil
	}
	pids, err := h.backends(ctx, db)
	if err != nil {
		return nil, err
	}
	for _, pid := range pids {
		if d, err := procstat.CPU(pid); err == nil {
			out[pid] = d
		}
	}
	return out, nil
}

// used is how much CPU the backends in after used since before: those
// that began meanwhile count whole, those that ended are lost (the pool
// keeps its connections, so there are few).
func used(before, after map[int]time.Duration) time.Duration {
	var sum time.Duration
	for pid, d := range after {
		sum += d - before[pid]
	}
	return sum
}

// median of xs, 0 for none.
func median[T int | float64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
