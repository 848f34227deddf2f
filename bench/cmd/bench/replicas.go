package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/rotor-dev/rotor/bench/auditcheck"
	"github.com/rotor-dev/rotor/bench/load"
)

// replicaRecord is one scale-out run's JSON line.
type replicaRecord struct {
	record
	Replicas    int               `json:"replicas"`
	Audit       auditcheck.Counts `json:"audit"`
	AuditVerify string            `json:"audit_verify"` // "intact", or why not
}

// replicas runs one, two and three rotor-ca replicas sharing one fresh
// Postgres database under the same load, connections spread over them,
// then checks every 201 against its row and the audit chain.
func (h *harness) replicas(ctx context.Context) error {
	bodies, err := load.Bodies(h.cfg.csrs)
	if err != nil {
		return err
	}
	var all []replicaRecord
	for _, n := range []int{1, 2, 3} {
		r, err := h.replicaRun(ctx, n, bodies)
		if err != nil {
			return fmt.Errorf("%d replicas: %w", n, err)
		}
		emit(r)
		all = append(all, *r)
		if !r.Audit.OK() || r.AuditVerify != "intact" {
			return fmt.Errorf("%d replicas: audit %s, chain %s", n, r.Audit, r.AuditVerify)
		}
	}
	h.doc["replicas"] = replicaTable(all, h.cfg)
	fmt.Fprintln(os.Stderr, h.doc["replicas"])
	return nil
}

// replicaRun measures n replicas once and checks their audit.
func (h *harness) replicaRun(ctx context.Context, n int, bodies [][]byte) (*replicaRecord, error) {
	defer h.stopFrom(len(h.stops))
	name := fmt.Sprintf("replicas-%d", n)
	s, err := h.startRotor(rotorOpts{name: name, postgres: true, replicas: n})
	if err != nil {
		return nil, err
	}
	rec, err := h.measure(ctx, s, load.Config{Conc: h.cfg.conc, Duration: h.cfg.duration, KeepSerials: true}, bodies)
	if err != nil {
		return nil, err
	}
	rec.Section = "replicas"
	r := &replicaRecord{record: *rec, Replicas: n, AuditVerify: "intact"}
	if r.Audit, err = auditcheck.Check(ctx, s.store, rec.Serials); err != nil {
		return nil, err
	}
	data := h.work + "/" + name
	if out, err := run(nil, h.bin("rotor-ca"), "audit", "verify", "--data-dir", data, "--store", s.store); err != nil {
		r.AuditVerify = strings.TrimSpace(string(out)) + " " + err.Error()
	}
	return r, nil
}

// replicaTable is the scale-out section's markdown.
func replicaTable(all []replicaRecord, c config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "c=%d spread over the replicas, one %s run each, one Postgres database:\n\n", c.conc, c.duration)
	b.WriteString("| replicas | issued/s | x one | p99 ms | rotor-ca CPU per cert (all) | Postgres CPU per cert | errors | every 201 one row | serials unique | audit verify |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range all {
		fmt.Fprintf(&b, "| %d | %.0f | %.2f | %.1f | %s | %s | %s | %s | %s | %s |\n", r.Replicas, r.PerSecond,
			r.PerSecond/all[0].PerSecond, ms(r.P99), us(r.ServerCPU), us(r.PostgresCPU), errorsText(r.Errors),
			yes(r.Audit.Missing == 0, r.Audit.String()), yes(r.Audit.Repeated == 0, ""), r.AuditVerify)
	}
	return b.String()
}

// yes is "yes" or "no" with detail.
func yes(ok bool, detail string) string {
	s := map[bool]string{true: "yes", false: "no"}[ok]
	if detail != "" {
		s += " (" + detail + ")"
	}
	return s
}
