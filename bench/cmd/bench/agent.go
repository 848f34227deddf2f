package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/agent"
	"github.com/rotor-dev/rotor/bench/procstat"
)

// agentRecord is the agent footprint's JSON line.
type agentRecord struct {
	Section       string        `json:"section"`
	Size          int64         `json:"binary_bytes"`
	StrippedSize  int64         `json:"stripped_binary_bytes"`
	IdleRSS       int64         `json:"idle_rss_bytes"`
	Idle          time.Duration `json:"idle_ns"`
	Renewals      int           `json:"renewals"`
	CPUPerRenewal time.Duration `json:"cpu_per_renewal_ns"`
	RenewingRSS   int64         `json:"renewing_rss_bytes"`
}

// agent measures rotor-agent: its binary as built and stripped, the RSS
// of one agent idling with a 24 h certificate, and the CPU per renewal of
// another renewing 6 s certificates over the same -agent-idle window.
func (h *harness) agent(ctx context.Context) error {
	defer h.stopFrom(len(h.stops))
	var r agentRecord
	var err error
	r.Section, r.Idle = "agent", h.cfg.agentIdle
	stripped := filepath.Join(h.work, "rotor-agent-stripped")
	if _, err := run(nil, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", stripped, "./cmd/rotor-agent"); err != nil {
		return err
	}
	if r.Size, err = fileSize(h.bin("rotor-agent")); err != nil {
		return err
	}
	if r.StrippedSize, err = fileSize(stripped); err != nil {
		return err
	}
	s, err := h.startRotor(rotorOpts{name: "agent-ca"})
	if err != nil {
		return err
	}
	idle, err := h.startAgent(s, "idle", stripped)
	if err != nil {
		return err
	}
	renewing, err := h.startAgent(s, "renewing", stripped, "--ttl", "6s")
	if err != nil {
		return err
	}
	cpu0 := procsCPU([]*proc{renewing})
	written0 := len(renewing.events(agent.EventWritten))
	if !sleepCtx(ctx, h.cfg.agentIdle) {
		return ctx.Err()
	}
	r.Renewals = len(renewing.events(agent.EventWritten)) - written0
	if r.Renewals > 0 {
		r.CPUPerRenewal = (procsCPU([]*proc{renewing}) - cpu0) / time.Duration(r.Renewals)
	}
	if r.IdleRSS, err = procstat.RSS(idle.pid()); err != nil {
		return err
	}
	if r.RenewingRSS, err = procstat.RSS(renewing.pid()); err != nil {
		return err
	}
	emit(r)
	h.doc["agent"] = agentTable(r)
	fmt.Fprintln(os.Stderr, h.doc["agent"])
	return nil
}

// startAgent starts the rotor-agent binary bin against s and waits for
// its first certificate.
func (h *harness) startAgent(s *system, name, bin string, args ...string) (*proc, error) {
	dir := filepath.Join(h.work, "agent-"+name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(s.token), 0o600); err != nil {
		return nil, err
	}
	args = append([]string{"--ca-url", s.urls[0], "--ca-bundle", filepath.Join(h.work, "agent-ca", "root.crt"),
		"--token-file", tokenFile, "--out-dir", filepath.Join(dir, "out"), "--log-format", "json"}, args...)
	p, err := start(filepath.Join(h.work, "agent-"+name+".log"), nil, bin, args...)
	if err != nil {
		return nil, err
	}
	h.stops = append(h.stops, p.stop)
	for end := time.Now().Add(30 * time.Second); len(p.events(agent.EventWritten)) == 0; {
		if time.Now().After(end) {
			return nil, fmt.Errorf("rotor-agent %s wrote no certificate in 30s; see %s", name, p.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p, nil
}

// agentTable is the agent section's markdown.
func agentTable(r agentRecord) string {
	mb := func(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/(1<<20)) }
	var b strings.Builder
	b.WriteString("| figure | value | target |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| rotor-agent binary, as go build makes it | %s | |\n", mb(r.Size))
	fmt.Fprintf(&b, "| rotor-agent binary, -trimpath -ldflags '-s -w' | %s | under 15 MB |\n", mb(r.StrippedSize))
	fmt.Fprintf(&b, "| idle RSS after %s (24 h certificate) | %s | under 15 MB |\n", r.Idle, mb(r.IdleRSS))
	fmt.Fprintf(&b, "| RSS of an agent renewing 6 s certificates, after %s | %s | |\n", r.Idle, mb(r.RenewingRSS))
	fmt.Fprintf(&b, "| CPU per renewal (%d renewals of 6 s certificates) | %s | |\n", r.Renewals, us(r.CPUPerRenewal))
	return b.String()
}

// fileSize is the size of the file at path.
func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// sleepCtx waits d unless ctx ends first, reporting whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}
