// Package fleet simulates many rotor-agents in one process, built on
// client/: each agent has its own key (a new one per certificate, as
// rotor-agent's default), makes a fresh TLS handshake for every request,
// gets its first certificate with the bearer token and renews over mTLS
// with the certificate it holds, at renew_after less up to 10% jitter of
// the lifetime, as rotor-agent does. A refusal the CA marks retryable (503,
// 429 and an unreachable CA) is retried after its Retry-After. What the
// fleet saw, per second, is the renewal storm's shape.
package fleet

import (
	"context"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/rotor-dev/rotor/bench/load"
	"github.com/rotor-dev/rotor/client"
)

// Config is one fleet.
type Config struct {
	URLs   []string // CAs; agent i talks to URLs[i%len(URLs)]
	Roots  *x509.CertPool
	Token  string // the agents' bearer token, for their first certificate
	Agents int
	// Start spreads the agents' first requests uniformly over it; zero is
	// a synchronized start.
	Start time.Duration
	// Duration is how long agents run, counted from the first start;
	// requests under way then finish and are counted.
	Duration time.Duration
	// MaxInFlight caps requests in flight across the fleet, as file
	// descriptors and loopback ports would; zero means 1024.
	MaxInFlight int
	// Renewals, if set, is how many renewals each agent makes before it
	// stops; the run then ends when every agent has, or at Duration.
	Renewals int
	// Jitter is the share of the lifetime an agent renews early by at
	// most, uniformly: rotor-agent's 10%.
	Jitter float64
}

// Fleet is a running simulation.
type Fleet struct {
	cfg   Config
	start time.Time
	slots chan struct{}
	stats *Stats
}

// Run runs the fleet until ctx ends or cfg.Duration passes, and returns
// what its agents saw.
func Run(ctx context.Context, cfg Config) (*Stats, error) {
	if cfg.Agents < 1 || len(cfg.URLs) == 0 || cfg.Token == "" || cfg.Duration <= 0 {
		return nil, fmt.Errorf("fleet: need agents, a URL, a token and a duration")
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 1024
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	f := &Fleet{cfg: cfg, start: time.Now(), slots: make(chan struct{}, cfg.MaxInFlight), stats: newStats()}
	var wg sync.WaitGroup
	for i := range cfg.Agents {
		cl, err := client.New(client.Config{URL: cfg.URLs[i%len(cfg.URLs)], Roots: cfg.Roots, UserAgent: "rotor-bench-fleet"})
		if err != nil {
			return nil, err
		}
		delay := time.Duration(0)
		if cfg.Start > 0 {
			delay = time.Duration(rand.Int64N(int64(cfg.Start)))
		}
		wg.Go(func() { f.agent(ctx, cl, delay) })
	}
	wg.Wait()
	f.stats.finish(time.Since(f.start))
	return f.stats, nil
}

// agent is one simulated rotor-agent.
func (f *Fleet) agent(ctx context.Context, cl *client.Client, delay time.Duration) {
	if !sleep(ctx, delay) {
		return
	}
	var held *client.Issued
	var heldKey any
	for renewals := 0; ctx.Err() == nil; {
		if f.cfg.Renewals > 0 && renewals >= f.cfg.Renewals {
			return
		}
		got, key, renewal, err := f.request(ctx, cl, held, heldKey)
		if ctx.Err() != nil && err != nil {
			return // the run ended under this request: not the CA's doing
		}
		if err != nil {
			wait := client.RetryAfter(err)
			if wait == 0 {
				wait = time.Second
			}
			if !sleep(ctx, wait+time.Duration(rand.Int64N(int64(wait)/4+1))) {
				return
			}
			continue
		}
		if renewal {
			renewals++
		}
		held, heldKey = got, key
		life := got.NotAfter.Sub(got.NotBefore)
		early := time.Duration(rand.Float64() * f.cfg.Jitter * float64(life))
		if !sleep(ctx, time.Until(got.RenewAfter.Add(-early))) {
			return
		}
	}
}

// request makes a key and asks for a certificate: by mTLS with held while
// it is valid (renewal), else by token. Each request is a fresh connection: mTLS
// ones by client/'s design, token ones because cl's pool is emptied.
func (f *Fleet) request(ctx context.Context, cl *client.Client, held *client.Issued, heldKey any) (
	got *client.Issued, key any, renewal bool, err error) {
	signer, csr, err := load.NewKeyCSR()
	if err != nil {
		return nil, nil, false, err
	}
	f.slots <- struct{}{}
	// Decided once a slot is free: a certificate that expired while its
	// agent waited must not be presented.
	req := client.IssueRequest{CSR: csr, Token: f.cfg.Token}
	renewal = held != nil && time.Until(held.NotAfter) > time.Second
	if renewal {
		req = client.IssueRequest{CSR: csr, ClientCertificate: load.KeyPair(held, heldKey)}
	}
	t0 := time.Now()
	got, err = cl.Issue(ctx, req)
	lat := time.Since(t0)
	<-f.slots
	cl.CloseIdleConnections()
	if ctx.Err() == nil || err == nil {
		f.stats.note(time.Since(f.start), lat, renewal, got, err)
	}
	return got, signer, renewal, err
}

// sleep waits d or until ctx ends, reporting whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
