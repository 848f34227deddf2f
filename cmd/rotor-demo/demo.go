package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// services are the two workloads, in start order; both live in namespace
// "default" with their name as service account.
var services = []string{"api", "webapp"}

type demoConfig struct {
	Duration time.Duration
	CertTTL  time.Duration
	Rate     float64
	BinDir   string
	Keep     bool
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("", stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage+"\nFlags of the demo:\n")
		fs.PrintDefaults()
	}
	var cfg demoConfig
	fs.DurationVar(&cfg.Duration, "duration", 45*time.Second, "how long webapp calls api before the demo stops and sums up (Ctrl-C stops it early)")
	fs.DurationVar(&cfg.CertTTL, "cert-ttl", 30*time.Second, "lifetime of the certificates the CA issues; agents renew about two thirds in")
	fs.Float64Var(&cfg.Rate, "rate", 10, "requests per second from webapp to api")
	fs.StringVar(&cfg.BinDir, "bin-dir", "", "directory holding rotor-ca and rotor-agent (default: beside this program, else go build them)")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the temporary directory (CA data, tokens, certificates) for a look afterwards")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.Duration <= 0 || cfg.CertTTL < 3*time.Second || cfg.Rate <= 0 {
		return fmt.Errorf("%w: --duration and --rate must be positive and --cert-ttl at least 3s", errUsage)
	}
	d := &demo{cfg: cfg, p: &printer{w: stdout}, t: newTally(),
		exited: make(chan *proc, 8), caAddr: make(chan string, 1), apiAddr: make(chan string, 1)}
	return d.run(ctx)
}

// demo is one run: its children in start order and what they printed.
type demo struct {
	cfg    demoConfig
	p      *printer
	t      *tally
	work   string
	exited chan *proc // children that exit before they are told to
	caAddr chan string
	// apiAddr is where the api listens (it picks a free port).
	apiAddr chan string

	// ran is how long webapp called api: --duration, or less after Ctrl-C.
	ran time.Duration

	mu       sync.Mutex
	procs    []*proc
	problems []string // why the demo failed, for the summary
}

func (d *demo) run(ctx context.Context) error {
	work, err := os.MkdirTemp("", "rotor-demo-")
	if err != nil {
		return err
	}
	d.work = work
	defer func() {
		if d.cfg.Keep {
			d.p.say("demo", "kept %s", work)
		} else {
			os.RemoveAll(work)
		}
	}()
	bins, err := findBinaries(ctx, d.cfg.BinDir, work, d.p)
	if errors.Is(err, errUsage) {
		return err
	}
	if err == nil {
		err = d.startAll(ctx, bins)
	}
	if err != nil {
		d.problem("%v", err)
	} else {
		d.watch(ctx)
	}
	d.stopAll()
	return d.summary()
}

// startAll starts the CA, makes the tokens, then the agents, the api and
// the webapp, each only once what it needs is there.
func (d *demo) startAll(ctx context.Context, bins binaries) error {
	caDir := filepath.Join(d.work, "ca")
	if err := d.start("ca", bins.CA, d.caLine, "serve", "--data-dir", caDir, "--log-format", "json",
		"--listen", "127.0.0.1:0", "--cert-ttl", d.cfg.CertTTL.String()); err != nil {
		return err
	}
	caURL, err := d.await(ctx, d.caAddr, "rotor-ca to serve", time.Minute)
	if err != nil {
		return err
	}
	for _, svc := range services {
		token, err := runOnce(ctx, bins.CA, "token", "create", "--data-dir", caDir,
			"--namespace", "default", "--service-account", svc)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(d.work, svc), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(d.work, svc, "token"), []byte(token), 0o600); err != nil {
			return err
		}
		d.p.say("demo", "made a static token for default/%s with rotor-ca token create", svc)
	}
	for _, svc := range services {
		if err := d.start("agent/"+svc, bins.Agent, d.agentLine(svc), "--log-format", "json", "--ca-url", caURL,
			"--ca-bundle", filepath.Join(caDir, "root.crt"), "--token-file", filepath.Join(d.work, svc, "token"),
			"--out-dir", filepath.Join(d.work, svc, "certs")); err != nil {
			return err
		}
	}
	if err := d.start("api", bins.Self, d.roleLine("api"), "api", "--certs", filepath.Join(d.work, "api", "certs"),
		"--listen", "127.0.0.1:0", "--allow", "default/webapp", "--log-format", "json", "--wait", "1m"); err != nil {
		return err
	}
	apiAddr, err := d.await(ctx, d.apiAddr, "the api to listen", 90*time.Second)
	if err != nil {
		return err
	}
	return d.start("webapp", bins.Self, d.roleLine("webapp"), "webapp", "--certs", filepath.Join(d.work, "webapp", "certs"),
		"--api-url", "https://"+apiAddr, "--api-identity", "default/api", "--rate", strconv.FormatFloat(d.cfg.Rate, 'g', -1, 64),
		"--report", "1s", "--log-format", "json", "--wait", "1m")
}

func (d *demo) start(name, bin string, onLine func(string), args ...string) error {
	p, err := startProc(name, bin, args, onLine, d.exited)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.procs = append(d.procs, p)
	d.mu.Unlock()
	return nil
}

// await waits for a child to announce an address.
func (d *demo) await(ctx context.Context, ch chan string, what string, limit time.Duration) (string, error) {
	select {
	case v := <-ch:
		return v, nil
	case p := <-d.exited:
		return "", d.died(p)
	case <-ctx.Done():
		return "", fmt.Errorf("interrupted while waiting for %s", what)
	case <-time.After(limit):
		return "", fmt.Errorf("gave up waiting for %s after %s", what, limit)
	}
}

// watch lets the services run for the duration, until Ctrl-C, or until a
// child dies.
func (d *demo) watch(ctx context.Context) {
	d.p.say("demo", "webapp calls api %g times a second for %s; certificates live %s and are renewed about two thirds in (Ctrl-C stops early)",
		d.cfg.Rate, d.cfg.Duration, d.cfg.CertTTL)
	start := time.Now()
	defer func() { d.ran = time.Since(start).Round(time.Second) }()
	select {
	case <-time.After(d.cfg.Duration):
	case <-ctx.Done():
		d.p.say("demo", "interrupted: stopping")
	case p := <-d.exited:
		d.problem("%v", d.died(p))
	}
}

// died reports a child that exited on its own; what it said last is
// already on the screen.
func (d *demo) died(p *proc) error {
	return fmt.Errorf("%s exited unexpectedly with code %d", p.name, p.cmd.ProcessState.ExitCode())
}

// stopAll stops the children newest first: webapp finishes its requests
// before the api goes, and the services before their agents and the CA.
func (d *demo) stopAll() {
	d.mu.Lock()
	procs := d.procs
	d.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		if code := p.stop(20 * time.Second); code != 0 && (p.name == "webapp" || p.name == "api") {
			d.problem("%s exited with code %d when stopped", p.name, code)
		}
	}
}

func (d *demo) problem(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.problems = append(d.problems, fmt.Sprintf(format, args...))
}

// joinKV is the summary's last line.
func joinKV(kv ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(kv[i] + "=" + kv[i+1])
	}
	return b.String()
}
