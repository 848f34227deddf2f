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

// fleetRecord is one fleet storm's JSON line.
type fleetRecord struct {
	Section string `json:"section"`
	Pacing  string `json:"pacing"`
	Agents  int    `json:"agents"`
	*fleet.Stats
	CACPU       time.Duration     `json:"ca_cpu_per_cert_ns"`
	PostgresCPU time.Duration     `json:"postgres_cpu_per_cert_ns"`
	CAPeakRSS   int64             `json:"ca_peak_rss_bytes"`
	Audit       auditcheck.Counts `json:"audit"`
}

// fleet runs the renewal storm once per -fleet-pacing variant: -fleet-agents
// agents started within -fleet-start against a fresh rotor-ca on Postgres
// with -fleet-ttl certificates, for -fleet-duration, once with the CA's
// renewal pacing and once without (--renewal-pacing=false), so that the
// paced renewal rate is compared with the unpaced one measured the same way.
func (h *harness) fleet(ctx context.Context) error {
	var runs []fleetRecord
	for _, pacing := range strings.Split(h.cfg.fleetPacing, ",") {
		pacing = strings.TrimSpace(pacing)
		if pacing != "paced" && pacing != "unpaced" {
			return fmt.Errorf("-fleet-pacing: %q is neither paced nor unpaced", pacing)
		}
		r, err := h.fleetRun(ctx, pacing)
		if err != nil {
			return err
		}
		runs = append(runs, r)
	}
	h.doc["fleet"] = fleetTable(runs, h.cfg)
	fmt.Fprintln(os.Stderr, h.doc["fleet"])
	return nil
}

// fleetRun is one storm.
func (h *harness) fleetRun(ctx context.Context, pacing string) (fleetRecord, error) {
	defer h.stopFrom(len(h.stops))
	// Every simulated agent comes from 127.0.0.1, which a real fleet does
	// not: the per-source limit on failed authentications would turn one
	// agent's expired certificate into 429s for all.
	s, err := h.startRotor(rotorOpts{name: "fleet-" + pacing, postgres: true,
		args: []string{"--cert-ttl", h.cfg.fleetTTL.String(), "--source-rate-limit", "0",
			"--renewal-pacing=" + fmt.Sprint(pacing == "paced")}})
	if err != nil {
		return fleetRecord{}, err
	}
	pgBefore, err := h.pgCPU(ctx, s.db)
	if err != nil {
		return fleetRecord{}, err
	}
	cpuBefore := procsCPU(s.procs)
	st, err := fleet.Run(ctx, fleet.Config{URLs: s.urls, Roots: s.roots, Token: s.token, Agents: h.cfg.fleetAgents,
		Start: h.cfg.fleetStart, Duration: h.cfg.fleetDuration, MaxInFlight: h.cfg.fleetConns})
	if err != nil {
		return fleetRecord{}, err
	}
	r := fleetRecord{Section: "fleet", Pacing: pacing, Agents: h.cfg.fleetAgents, Stats: st}
	pgAfter, err := h.pgCPU(ctx, s.db)
	if err != nil {
		return fleetRecord{}, err
	}
	if n := time.Duration(st.First + st.Renewals + st.Reissued); n > 0 {
		r.CACPU, r.PostgresCPU = (procsCPU(s.procs)-cpuBefore)/n, used(pgBefore, pgAfter)/n
	}
	if r.CAPeakRSS, err = procstat.PeakRSS(s.procs[0].pid()); err != nil {
		return fleetRecord{}, err
	}
	if r.Audit, err = auditcheck.Check(ctx, s.store, st.Serials); err != nil {
		return fleetRecord{}, err
	}
	emit(r)
	if !r.Audit.OK() {
		return fleetRecord{}, fmt.Errorf("%s storm: audit promise broken: %s", pacing, r.Audit)
	}
	return r, nil
}

// fleetTable is the fleet section's markdown: the runs side by side, then
// each one's certificates per second.
func fleetTable(runs []fleetRecord, c config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d agents started within %s, %s certificates, %s runs, at most %d requests in flight, "+
		"rotor-ca on Postgres, --source-rate-limit 0 (one source address for the whole fleet):\n\n",
		c.fleetAgents, c.fleetStart, c.fleetTTL, c.fleetDuration, c.fleetConns)
	b.WriteString("| figure |")
	for _, r := range runs {
		fmt.Fprintf(&b, " %s |", r.Pacing)
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(runs)) + "\n")
	row := func(k string, v func(r fleetRecord) string) {
		fmt.Fprintf(&b, "| %s |", k)
		for _, r := range runs {
			fmt.Fprintf(&b, " %s |", v(r))
		}
		b.WriteString("\n")
	}
	row("first certificates (token)", func(r fleetRecord) string { return fmt.Sprint(r.First) })
	row("renewals: mTLS / by token after the certificate ran out", func(r fleetRecord) string {
		return fmt.Sprintf("%d / %d", r.Renewals, r.Reissued)
	})
	row("renewals set out on per second (agents' timers: the demand pacing shapes): peak / mean", func(r fleetRecord) string {
		return fmt.Sprintf("%d / %.0f", r.BegunPeak, r.BegunMean)
	})
	row("**renewals set out on: peak over mean** (target at most 1.5 paced)", func(r fleetRecord) string {
		return fmt.Sprintf("**%.2f**", r.BegunPeakOverMean)
	})
	row("renewals completed per second: peak / mean", func(r fleetRecord) string {
		return fmt.Sprintf("%d / %.0f", r.RenewalPeak, r.RenewalMean)
	})
	row("**renewals completed: peak over mean** (target at most 1.5 paced)", func(r fleetRecord) string {
		return fmt.Sprintf("**%.2f**", r.RenewalPeakOverMean)
	})
	row("renewals completed, peak 10 s over mean (a stall's catch-up smoothed)", func(r fleetRecord) string {
		return fmt.Sprintf("%.2f", r.RenewalPeak10sOverMean)
	})
	row("all certificates per second: peak / mean (peak over mean)", func(r fleetRecord) string {
		return fmt.Sprintf("%d / %.0f (%.2f)", r.Peak, r.Mean, r.PeakOverMean)
	})
	row("errors (target 0)", func(r fleetRecord) string { return errorCodes(r.Errors) })
	row("first errors (second of the run: error)", func(r fleetRecord) string {
		if len(r.ErrorSamples) == 0 {
			return "-"
		}
		return strings.ReplaceAll(strings.Join(r.ErrorSamples[:min(3, len(r.ErrorSamples))], "; "), "|", "/")
	})
	row("mTLS renewals refused as expired in the queue, renewed by token at once", func(r fleetRecord) string {
		return fmt.Sprint(r.Expired)
	})
	row("shed and retried after Retry-After", func(r fleetRecord) string { return errorCodes(r.Shed) })
	row("p50 / p99 latency", func(r fleetRecord) string { return fmt.Sprintf("%.0f ms / %.0f ms", ms(r.P50), ms(r.P99)) })
	row("rotor-ca CPU per certificate", func(r fleetRecord) string { return us(r.CACPU) })
	row("Postgres backends' CPU per certificate", func(r fleetRecord) string { return us(r.PostgresCPU) })
	row("rotor-ca peak RSS", func(r fleetRecord) string { return fmt.Sprintf("%.0f MB", float64(r.CAPeakRSS)/(1<<20)) })
	row("audit: every 201 has one row", func(r fleetRecord) string { return r.Audit.String() })
	for _, r := range runs {
		fmt.Fprintf(&b, "\n%s: per second, in %d s buckets, mean and peak second:\n\n",
			r.Pacing, bucketWidth(len(r.PerSecond)))
		b.WriteString(buckets(r.PerSecond, r.RenewalsPerSecond, r.BegunPerSecond, bucketWidth(len(r.PerSecond))))
	}
	return b.String()
}

// bucketWidth keeps a run's histogram to about 30 rows.
func bucketWidth(seconds int) int { return max(10, (seconds+29)/30/10*10) }

// buckets summarizes per-second histograms of all certificates, of
// renewals and of renewals set out on, in buckets of n seconds.
func buckets(all, renewals, begun []int, n int) string {
	var b strings.Builder
	b.WriteString("| seconds | certificates | renewals completed | renewals set out on |\n|---|---|---|---|\n")
	cell := func(counts []int, i, j int) string {
		m, p := meanPeak(counts[min(i, len(counts)):min(j, len(counts))])
		return fmt.Sprintf("%.0f / %d", m, p)
	}
	for i := 0; i < len(all); i += n {
		j := min(i+n, len(all))
		fmt.Fprintf(&b, "| %d-%d | %s | %s | %s |\n", i, j, cell(all, i, j), cell(renewals, i, j), cell(begun, i, j))
	}
	return b.String()
}

// meanPeak is the mean and the largest of counts.
func meanPeak(counts []int) (float64, int) {
	sum, peak := 0, 0
	for _, v := range counts {
		sum, peak = sum+v, max(peak, v)
	}
	return float64(sum) / float64(max(1, len(counts))), peak
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
