package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/bench/auditcheck"
	"github.com/rotor-dev/rotor/bench/fleet"
	"github.com/rotor-dev/rotor/bench/procstat"
)

// fleetRecord is the fleet storm's JSON line.
type fleetRecord struct {
	Section string `json:"section"`
	Agents  int    `json:"agents"`
	*fleet.Stats
	CACPU       time.Duration     `json:"ca_cpu_per_cert_ns"`
	PostgresCPU time.Duration     `json:"postgres_cpu_per_cert_ns"`
	CAPeakRSS   int64             `json:"ca_peak_rss_bytes"`
	Audit       auditcheck.Counts `json:"audit"`
}

// fleet runs the renewal storm: -fleet-agents agents started within
// -fleet-start against one rotor-ca on Postgres with -fleet-ttl
// certificates, for -fleet-duration. The CA paces renew_after by its
// own load (rotor.PacedRenewalTime), so peak over mean is what a
// synchronized start becomes with that pacing and the agents' jitter.
func (h *harness) fleet(ctx context.Context) error {
	defer h.stopFrom(len(h.stops))
	// Every simulated agent comes from 127.0.0.1, which a real fleet does
	// not: the per-source limit on failed authentications would turn one
	// agent's expired certificate into 429s for all.
	s, err := h.startRotor(rotorOpts{name: "fleet", postgres: true,
		args: []string{"--cert-ttl", h.cfg.fleetTTL.String(), "--source-rate-limit", "0"}})
	if err != nil {
		return err
	}
	pgBefore, err := h.pgCPU(ctx, s.db)
	if err != nil {
		return err
	}
	cpuBefore := procsCPU(s.procs)
	st, err := fleet.Run(ctx, fleet.Config{URLs: s.urls, Roots: s.roots, Token: s.token, Agents: h.cfg.fleetAgents,
		Start: h.cfg.fleetStart, Duration: h.cfg.fleetDuration, MaxInFlight: h.cfg.fleetConns, Jitter: 0.1})
	if err != nil {
		return err
	}
	r := fleetRecord{Section: "fleet", Agents: h.cfg.fleetAgents, Stats: st}
	pgAfter, err := h.pgCPU(ctx, s.db)
	if err != nil {
		return err
	}
	if n := time.Duration(st.First + st.Renewals); n > 0 {
		r.CACPU, r.PostgresCPU = (procsCPU(s.procs)-cpuBefore)/n, used(pgBefore, pgAfter)/n
	}
	if r.CAPeakRSS, err = procstat.PeakRSS(s.procs[0].pid()); err != nil {
		return err
	}
	if r.Audit, err = auditcheck.Check(ctx, s.store, st.Serials); err != nil {
		return err
	}
	emit(r)
	h.doc["fleet"] = fleetTable(r, h.cfg)
	fmt.Fprintln(os.Stderr, h.doc["fleet"])
	if !r.Audit.OK() {
		return fmt.Errorf("audit promise broken: %s", r.Audit)
	}
	return nil
}

// fleetTable is the fleet section's markdown.
func fleetTable(r fleetRecord, c config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d agents started within %s, %s certificates, %s run, at most %d requests in flight, "+
		"rotor-ca on Postgres with its renewal pacing, --source-rate-limit 0 (one source address for the whole fleet):\n\n", r.Agents, c.fleetStart, c.fleetTTL, c.fleetDuration, c.fleetConns)
	b.WriteString("| figure | value |\n|---|---|\n")
	row := func(k string, v any) { fmt.Fprintf(&b, "| %s | %v |\n", k, v) }
	row("first certificates (token) / renewals (mTLS)", fmt.Sprintf("%d / %d", r.First, r.Renewals))
	row("errors (target 0)", errorCodes(r.Errors))
	row("shed and retried after Retry-After", errorCodes(r.Shed))
	row("peak / mean certificates per second", fmt.Sprintf("%d / %.0f", r.Peak, r.Mean))
	row("peak over mean", fmt.Sprintf("%.2f", r.PeakOverMean))
	row("p50 / p99 latency", fmt.Sprintf("%.0f ms / %.0f ms", ms(r.P50), ms(r.P99)))
	row("rotor-ca CPU per certificate", us(r.CACPU))
	row("Postgres backends' CPU per certificate", us(r.PostgresCPU))
	row("rotor-ca peak RSS", fmt.Sprintf("%.0f MB", float64(r.CAPeakRSS)/(1<<20)))
	row("audit: every 201 has one row", r.Audit.String())
	b.WriteString("\nCertificates per second, in 10 s buckets (mean / peak second):\n\n")
	b.WriteString(buckets(r.PerSecond, 10))
	return b.String()
}

// buckets summarizes a per-second histogram in buckets of n seconds.
func buckets(perSec []int, n int) string {
	var b strings.Builder
	b.WriteString("| seconds | mean/s | peak/s |\n|---|---|---|\n")
	for i := 0; i < len(perSec); i += n {
		part := perSec[i:min(i+n, len(perSec))]
		sum, peak := 0, 0
		for _, v := range part {
			sum, peak = sum+v, max(peak, v)
		}
		fmt.Fprintf(&b, "| %d-%d | %.0f | %d |\n", i, i+len(part), float64(sum)/float64(len(part)), peak)
	}
	return b.String()
}

// errorCodes is a count by code, "0" for none.
func errorCodes[K ~string](m map[K]int) string {
	if len(m) == 0 {
		return "0"
	}
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
	}
	return strings.Join(parts, ", ")
}
