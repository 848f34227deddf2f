package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
)

type webappConfig struct {
	roleFlags
	APIURL      string
	APIIdentity string
	Rate        float64
	Report      time.Duration
	Timeout     time.Duration
}

// runWebapp is `rotor-demo webapp`: it calls the api over mTLS --rate times
// a second, accepts only a server proving --api-identity, and logs the
// request and failure totals every --report.
func runWebapp(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("webapp", stderr)
	var cfg webappConfig
	cfg.register(fs)
	fs.StringVar(&cfg.APIURL, "api-url", "https://127.0.0.1:8443", "the api's base URL")
	fs.StringVar(&cfg.APIIdentity, "api-identity", "default/api", "identity the api must prove, namespace/service-account")
	fs.Float64Var(&cfg.Rate, "rate", 10, "requests per second")
	fs.DurationVar(&cfg.Report, "report", time.Second, "how often to log the request and failure totals")
	fs.DurationVar(&cfg.Timeout, "timeout", 2*time.Second, "bound on one request, handshake included")
	if err := fs.Parse(args); err != nil {
		return err
	}
	want, err := parseIdentity(cfg.APIIdentity)
	if err != nil {
		return fmt.Errorf("%w: --api-identity: %v", errUsage, err)
	}
	if cfg.Rate <= 0 || cfg.Report <= 0 || cfg.Timeout <= 0 {
		return fmt.Errorf("%w: --rate, --report and --timeout must be positive", errUsage)
	}
	log, src, rotations, err := cfg.start(ctx, stderr, "webapp")
	if err != nil {
		return err
	}

	c := newCaller(src, cfg.APIURL, want, cfg.Timeout, log)
	calls := time.NewTicker(time.Duration(float64(time.Second) / cfg.Rate))
	defer calls.Stop()
	report := time.NewTicker(cfg.Report)
	defer report.Stop()
	var inFlight sync.WaitGroup
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-calls.C:
			// Requests do not use ctx: stopping ends the loop, and the
			// requests under way finish normally rather than fail.
			inFlight.Go(func() { _ = c.call(context.Background()) })
		case <-report.C:
			log.Info("Requests so far", "event", eventStats, "requests", c.requests.Load(), "failed", c.failed.Load())
		}
	}
	inFlight.Wait()
	log.Info("webapp stopped", "event", eventFinal, "requests", c.requests.Load(), "failed", c.failed.Load(),
		"rotations", <-rotations, "peer_certificates", c.peers.count())
	return nil
}

// caller makes the webapp's requests and counts them. Safe for concurrent
// use.
type caller struct {
	src      *client.TLSSource
	url      string
	want     rotor.Identity
	hc       *http.Client
	log      *slog.Logger
	peers    *peerTracker
	requests atomic.Int64
	failed   atomic.Int64
}

func newCaller(src *client.TLSSource, apiURL string, want rotor.Identity, timeout time.Duration, log *slog.Logger) *caller {
	// No keep-alive: every request is a new handshake, so every one of them
	// exercises both sides' current certificates across rotations.
	tr := &http.Transport{TLSClientConfig: src.ClientConfig(want), DisableKeepAlives: true,
		ForceAttemptHTTP2: false}
	return &caller{src: src, url: apiURL + helloPath, want: want, log: log, peers: newPeerTracker(log),
		hc: &http.Client{Transport: tr, Timeout: timeout}}
}

// callError says which check a request failed.
type callError struct {
	Kind string // "transport" (connect, TLS, timeout), "status", "peer" or "answer"
	Err  error
}

func (e *callError) Error() string { return e.Kind + ": " + e.Err.Error() }
func (e *callError) Unwrap() error { return e.Err }

// call makes one request and checks, beyond the TLS verification against
// the current bundle, that the server proved the wanted identity and that
// it saw this side's identity.
func (c *caller) call(ctx context.Context) error {
	err := c.do(ctx)
	c.requests.Add(1)
	if err != nil {
		c.failed.Add(1)
		c.log.Warn("Request failed", "event", eventFailed, "kind", err.Kind, "error", err.Err)
		return err
	}
	return nil
}

func (c *caller) do(ctx context.Context) *callError {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return &callError{"transport", err}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return &callError{"transport", err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &callError{"status", fmt.Errorf("%s", resp.Status)}
	}
	peer, err := c.src.PeerIdentity(resp.TLS)
	if err == nil && peer != c.want {
		err = fmt.Errorf("server is %s, want %s", peer, c.want)
	}
	if err != nil {
		return &callError{"peer", err}
	}
	c.peers.observe(peer, resp.TLS.PeerCertificates[0].SerialNumber.Text(16))
	var h hello
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&h); err != nil {
		return &callError{"answer", err}
	}
	if me := c.src.Identity().String(); h.Caller != me || h.Server != c.want.String() {
		return &callError{"answer", fmt.Errorf("api says caller %q, server %q; want %q, %q", h.Caller, h.Server, me, c.want)}
	}
	return nil
}
