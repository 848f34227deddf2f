// Command rotor-agent runs beside a workload and keeps its certificate
// fresh: it gets one from a Rotor CA at start, writes cert.pem, key.pem and
// bundle.pem atomically into --out-dir, renews before expiry and tells the
// workload with --exec or --signal, and with --workload-api-socket serves the
// SPIFFE Workload API on a unix socket. See README.md and docs/workload-api.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/agent"
	"github.com/rotor-dev/rotor/agent/workloadapi"
	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/internal/cli"
)

const usageHead = `Usage: rotor-agent --ca-url URL (--ca-bundle FILE | --ca-fingerprint SHA256)
                   (--token-file FILE | --token TOKEN) --out-dir DIR [flags]

Keeps a workload certificate fresh: issues one at start (or reuses a good one
on disk), writes DIR/cert.pem (leaf then chain), DIR/key.pem (0600) and
DIR/bundle.pem atomically, renews before expiry, and runs --exec or sends
--signal after each new certificate. With --workload-api-socket PATH it also
serves the SPIFFE Workload API (X.509) on that unix socket. Every flag has an environment twin:
--ca-url is also ROTOR_CA_URL (prefer ROTOR_TOKEN to --token, which ps shows).
"rotor-agent --version" prints the build: module version, VCS revision, Go version.

Flags:
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// envPrefix starts every setting's environment variable.
const envPrefix = "ROTOR_"

// options are the flags that are not agent.Config fields as they are.
type options struct {
	keyType, signal, listen string
	socket                  workloadapi.Socket
	socketMode              string
	keyMode, owner          string
	logging                 cli.LogFlags
}

func register(fs *cli.FlagSet, c *agent.Config, o *options) {
	fs.StringVar(&c.CAURL, "ca-url", "", "the CA's base URL, e.g. https://rotor-ca:8443")
	fs.StringVar(&c.CABundleFile, "ca-bundle", "", "PEM file with the root(s) that verify the CA (e.g. the CA's root.crt)")
	fs.StringVar(&c.CAFingerprint, "ca-fingerprint", "", "SHA-256 of the CA's root, hex: pins first contact, then the fetched bundle is kept in --out-dir")
	fs.StringVar(&c.TokenFile, "token-file", "", "file holding the bearer token, re-read before every request (projected service-account tokens rotate)")
	fs.StringVar(&c.Token, "token", "", "the bearer token itself (visible in ps: prefer ROTOR_TOKEN or --token-file)")
	fs.StringVar(&c.OutDir, "out-dir", "", "directory for cert.pem, key.pem and bundle.pem")
	fs.StringVar(&c.Layout.Cert, "cert-file", client.CertFile, "name in --out-dir of the certificate file (leaf then chain); a path only directly in --out-dir, so one swap replaces every file")
	fs.StringVar(&c.Layout.Key, "key-file", client.KeyFile, "name in --out-dir of the private key file (PKCS#8, --key-mode)")
	fs.StringVar(&c.Layout.Bundle, "bundle-file", client.BundleFile, "name in --out-dir of the trust bundle file (the roots that verify peers)")
	fs.StringVar(&c.Layout.Combined, "combined-file", "", "name in --out-dir of a file holding the key, the leaf and the chain, for HAProxy and others that want one file; written in the same swap, with --key-mode (default: none)")
	fs.StringVar(&o.keyMode, "key-mode", fmt.Sprintf("%04o", client.DefaultKeyMode), "permission bits of the key and the combined file, octal, e.g. 0640 with --owner :proxy-group; none for other users")
	fs.StringVar(&o.owner, "owner", "", "user[:group] or :group (names or IDs) that owns the files, set before their first byte, e.g. haproxy:haproxy; the agent must be root or, for a group, a member (default: the agent's)")
	fs.StringVar(&o.keyType, "key-type", string(rotor.ECDSAP256), "private key type: ecdsa-p256, ecdsa-p384, ed25519, rsa-2048 or rsa-3072")
	fs.DurationVar(&c.TTL, "ttl", 0, "lifetime to ask for, at most the CA's maximum (default: the CA's default)")
	c.RenewBefore = agent.DefaultRenewBefore
	fs.Var(&c.RenewBefore, "renew-before", "renew this long before expiry: a duration (1h) or a share of the lifetime (33%); the CA's renew_after wins if earlier, and up to 10% jitter moves it earlier still")
	fs.BoolVar(&c.ReuseKey, "reuse-key", false, "keep the same private key across renewals (default: a new key for each certificate)")
	fs.StringVar(&c.Exec, "exec", "", "command run through /bin/sh -c after each new certificate is in place, e.g. 'nginx -s reload'")
	fs.DurationVar(&c.ExecTimeout, "exec-timeout", agent.DefaultExecTimeout, "how long --exec may run before it is killed")
	fs.StringVar(&o.signal, "signal", "", "signal (HUP, USR1, ...) sent to the process in --pid-file after each new certificate; the alternative to --exec")
	fs.StringVar(&c.PIDFile, "pid-file", "", "file holding the process ID --signal goes to")
	fs.BoolVar(&c.Once, "once", false, "make sure a valid certificate is on disk, then exit (init containers, cron); exits non-zero if none could be put there, or if --exec or --signal failed")
	fs.DurationVar(&c.OnceTimeout, "once-timeout", agent.DefaultOnceTimeout, "with --once, how long to retry while the CA cannot be reached or is unavailable, or the write fails; a refusal ends the run at once")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", client.DefaultTimeout, "bound on each request to the CA")
	fs.DurationVar(&c.RenewalInfoInterval, "renewal-info-interval", agent.DefaultRenewalInfoInterval, "how often to ask the CA's renewal info about the certificate (sooner if its Retry-After says so, not under 30s unless this is shorter); when its window opens early (revoked, issuer rotated) the agent renews within it, by token; 0: never ask")
	fs.StringVar(&o.listen, "listen", "", "address for /livez (200 while the process runs: liveness), /readyz (200 while a valid certificate is on disk: readiness; /healthz is its old name) and /metrics, e.g. 127.0.0.1:9253; port 0 picks a free one (the event=agent.listening log line gives it) (default: off)")
	fs.StringVar(&o.socket.Path, "workload-api-socket", "", "serve the SPIFFE Workload API (X.509 SVIDs and bundles) on this unix socket, beside the files in --out-dir, e.g. /run/spire/sockets/agent.sock (default: off)")
	fs.StringVar(&o.socketMode, "workload-api-socket-mode", fmt.Sprintf("%04o", workloadapi.DefaultMode), "permission bits of --workload-api-socket, octal: whoever may connect gets the private key")
	fs.StringVar(&o.socket.Group, "workload-api-socket-group", "", "group (name or ID) that owns --workload-api-socket, e.g. the workload's, with --workload-api-socket-mode 0660 (default: the agent's)")
	o.logging.Register(fs)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if cli.IsVersion(args) {
		cli.PrintVersion(stdout, "rotor-agent")
		return 0
	}
	a, wl, opt, log, code := setup(args, stderr)
	if a == nil {
		return code
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if wl != nil {
		stopSocket, err := serveWorkloadAPI(ctx, opt.socket, wl, log)
		if err != nil {
			log.Error("Cannot serve the Workload API", "socket", opt.socket.Path, "error", err)
			return 1
		}
		defer stopSocket()
	}
	if opt.listen != "" {
		shutdown, err := serve(opt.listen, a.Handler(), log)
		if err != nil {
			log.Error("Cannot listen", "listen", opt.listen, "error", err)
			return 1
		}
		defer shutdown()
	}
	if err := a.Run(ctx); err != nil {
		log.Error("Stopping with an error", "error", err)
		return 1
	}
	if ctx.Err() != nil {
		log.Info("Shutting down; the certificate stays on disk")
	}
	return 0
}

// setup parses the settings and makes the agent, and the Workload API
// server if a socket is set. A nil agent means stop with code: 0 after
// --help, 2 for settings that cannot work (said on stderr).
func setup(args []string, stderr io.Writer) (*agent.Agent, *workloadapi.Server, *options, *slog.Logger, int) {
	fs := cli.NewFlagSet("rotor-agent", envPrefix, stderr)
	var (
		cfg agent.Config
		opt options
	)
	register(fs, &cfg, &opt)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHead)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, nil, nil, 0
		}
		fmt.Fprintln(stderr, "rotor-agent:", err)
		return nil, nil, nil, nil, 2
	}
	log, err := opt.logging.Logger(stderr)
	if err == nil {
		err = opt.apply(&cfg)
	}
	// A reload command has no business with the CA credential.
	cfg.ExecEnv = environWithout(os.Environ(), fs.EnvName("token"))
	var wl *workloadapi.Server
	if err == nil && opt.socket.Path != "" {
		wl = workloadapi.New(log)
		cfg.Subscriber = wl
	}
	var a *agent.Agent
	if err == nil {
		cfg.Logger = log
		a, err = agent.New(cfg)
	}
	if err != nil {
		fmt.Fprintln(stderr, "rotor-agent:", err)
		return nil, nil, nil, nil, 2
	}
	if cfg.Once {
		opt.listen = "" // nothing probes an agent that exits once the pair is on disk
	}
	return a, wl, &opt, log, 0
}

func (o *options) apply(c *agent.Config) error {
	kt, err := rotor.ParseKeyType(o.keyType)
	if err != nil {
		return fmt.Errorf("--key-type: %w", err)
	}
	c.KeyType = kt
	if o.signal != "" {
		if c.Signal, err = agent.ParseSignal(o.signal); err != nil {
			return fmt.Errorf("--signal: %w", err)
		}
	}
	if c.Layout.KeyMode, err = agent.ParseMode(o.keyMode); err != nil {
		return fmt.Errorf("--key-mode: %w", err)
	}
	if o.owner != "" {
		if c.Layout.Owner, err = agent.ParseOwner(o.owner); err != nil {
			return fmt.Errorf("--owner: %w", err)
		}
	}
	if o.socket.Mode, err = agent.ParseMode(o.socketMode); err != nil {
		return fmt.Errorf("--workload-api-socket-mode: %w", err)
	}
	if o.socket.Path != "" && c.Once {
		return fmt.Errorf("--workload-api-socket serves while the agent runs; --once exits at once")
	}
	return nil
}

// environWithout is environ without the variables named.
func environWithout(environ []string, names ...string) []string {
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, name) {
			out = append(out, kv)
		}
	}
	return out
}

// serveWorkloadAPI binds the socket and serves the Workload API on it
// until ctx ends or the returned stop is called, which waits for the
// socket to be removed.
func serveWorkloadAPI(ctx context.Context, sock workloadapi.Socket, srv *workloadapi.Server, log *slog.Logger) (func(), error) {
	ln, err := sock.Listen()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ctx, ln); err != nil {
			log.Error("Workload API server stopped", "error", err)
		}
	}()
	log.Info("Serving the SPIFFE Workload API", rotor.LogEvent, workloadapi.EventServing, "socket", sock.Path,
		"mode", fmt.Sprintf("%04o", sock.Mode), "group", sock.Group)
	return func() { cancel(); <-done }, nil
}

// serve starts the probe and metrics server and returns its shutdown.
func serve(addr string, h http.Handler, log *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("Health and metrics server stopped", "error", err)
		}
	}()
	log.Info("Serving /livez, /readyz, /healthz and /metrics", rotor.LogEvent, agent.EventListening, "listen", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
