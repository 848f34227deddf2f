// Command bench is Rotor's benchmark harness, rerun with one command:
//
//	GOTOOLCHAIN=go1.27.3 go run ./bench/cmd/bench -doc docs/performance.md
//
// It builds rotor-ca, rotor-agent and the ceilings, starts each system it
// measures on 127.0.0.1 (rotor-ca on a fresh SQLite data dir, on a fresh
// Postgres database, on SoftHSM2 when installed; the bare Go CA; the HTTPS
// no-op), drives them in turn with bench/load (A B C A B C ..., -rounds
// times), then runs the fleet storm (bench/fleet), two and three replicas
// on one Postgres, and the agent footprint. Every run is one JSON line on
// stdout; the tables (medians and ratios) go to stderr and, with -doc,
// between the <!-- bench:NAME --> markers of that file.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// config is the command line.
type config struct {
	duration, fleetTTL, fleetDuration, fleetStart, agentIdle time.Duration
	conc, rounds, csrs, fleetAgents, fleetConns              int
	sections, fleetPacing, pgURL, doc, work                  string
}

func main() {
	var c config
	flag.DurationVar(&c.duration, "d", 10*time.Second, "length of each load run")
	flag.IntVar(&c.conc, "c", 64, "concurrent clients of each load run")
	flag.IntVar(&c.rounds, "rounds", 2, "interleaved rounds: every system once per round")
	flag.IntVar(&c.csrs, "csrs", 256, "distinct presigned CSRs per run")
	flag.StringVar(&c.sections, "sections", "throughput,fleet,replicas,agent", "what to run, comma-separated")
	flag.IntVar(&c.fleetAgents, "fleet-agents", 100_000, "simulated agents in the fleet storm")
	flag.DurationVar(&c.fleetTTL, "fleet-ttl", 20*time.Minute, "certificate lifetime in the fleet storm")
	flag.DurationVar(&c.fleetDuration, "fleet-duration", 25*time.Minute, "length of the fleet storm")
	flag.DurationVar(&c.fleetStart, "fleet-start", 2*time.Second, "the fleet's agents all start within this")
	flag.StringVar(&c.fleetPacing, "fleet-pacing", "paced,unpaced", "the fleet storm's runs: rotor-ca with its renewal pacing (paced), without it (unpaced, --renewal-pacing=false), or both")
	flag.IntVar(&c.fleetConns, "fleet-conns", 1024, "most fleet requests in flight at once (file descriptors, ports)")
	flag.DurationVar(&c.agentIdle, "agent-idle", 45*time.Second, "how long rotor-agent idles before its RSS is read")
	flag.StringVar(&c.pgURL, "postgres", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "Postgres to create scratch databases in (loopback)")
	flag.StringVar(&c.doc, "doc", "", "markdown file whose <!-- bench:NAME --> sections are rewritten (e.g. docs/performance.md)")
	flag.StringVar(&c.work, "work", "", "directory for binaries, data dirs and logs (default: a fresh temporary one, removed at the end)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := c.run(ctx, log); err != nil {
		log.Error("bench failed", "error", err)
		os.Exit(1)
	}
}

// harness is what one invocation holds: where things are, the Postgres
// admin connection, and what to stop at the end, last first.
type harness struct {
	cfg   config
	log   *slog.Logger
	work  string
	pgURL string
	pg    *pgx.Conn
	stops []func()
	doc   map[string]string // section name -> markdown
}

func (c config) run(ctx context.Context, log *slog.Logger) error {
	h := &harness{cfg: c, log: log, pgURL: c.pgURL, work: c.work, doc: map[string]string{}}
	if h.work == "" {
		dir, err := os.MkdirTemp("", "rotor-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		h.work = dir
	}
	defer h.stopAll()
	if err := h.setup(ctx); err != nil {
		return err
	}
	h.doc["machine"] = h.machine(ctx)
	for _, s := range strings.Split(c.sections, ",") {
		if err := h.section(ctx, strings.TrimSpace(s)); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	if c.doc != "" {
		return writeSections(c.doc, h.doc)
	}
	return nil
}

// section runs one part of the benchmark.
func (h *harness) section(ctx context.Context, name string) error {
	switch name {
	case "throughput":
		return h.throughput(ctx)
	case "fleet":
		return h.fleet(ctx)
	case "replicas":
		return h.replicas(ctx)
	case "agent":
		return h.agent(ctx)
	}
	return fmt.Errorf("unknown section %q: want throughput, fleet, replicas or agent", name)
}

// setup builds the binaries and connects to Postgres.
func (h *harness) setup(ctx context.Context) error {
	if !strings.Contains(h.pgURL, "@127.0.0.1") && !strings.Contains(h.pgURL, "@localhost") {
		return fmt.Errorf("--postgres %s is not on loopback", h.pgURL)
	}
	h.log.Info("building", "dir", h.work)
	if _, err := run(nil, "go", "build", "-o", filepath.Join(h.work, "bin")+"/", "./cmd/rotor-ca", "./cmd/rotor-agent",
		"./bench/cmd/ceiling"); err != nil {
		return err
	}
	if _, err := run(nil, "go", "test", "-c", "-o", h.bin("bench.test"), "./bench/"); err != nil {
		return err
	}
	var err error
	if h.pg, err = pgx.Connect(ctx, h.pgURL); err != nil {
		return fmt.Errorf("connect to Postgres: %w", err)
	}
	h.stops = append(h.stops, func() { _ = h.pg.Close(context.Background()) })
	return nil
}

// bin is the path of a built binary.
func (h *harness) bin(name string) string { return filepath.Join(h.work, "bin", name) }

// stopAll stops what was started, last first.
func (h *harness) stopAll() {
	for i := len(h.stops) - 1; i >= 0; i-- {
		h.stops[i]()
	}
	h.stops = nil
}

// stopFrom stops what was started since len(h.stops) was n, last first:
// each section leaves the machine as it found it.
func (h *harness) stopFrom(n int) {
	for len(h.stops) > n {
		last := h.stops[len(h.stops)-1]
		h.stops = h.stops[:len(h.stops)-1]
		last()
	}
}
