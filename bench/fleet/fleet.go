// Package fleet simulates many rotor-agents in one process, built on
// client/: each agent has its own key (a new one per certificate, as
// rotor-agent's default), makes a fresh TLS handshake for every request,
// gets its first certificate with the bearer token and renews over mTLS
// with the certificate it holds, when rotor-agent would (agent.NextRenewal:
// renew_after less up to a tenth of the wait). A refusal is retried after
// its Retry-After, cut short, as rotor-agent's are, so that the certificate
// can still authenticate the retry; a certificate refused as expired (it
// ran out while the request queued) is replaced by token at once, as
// rotor-agent does. What the fleet saw, per second, is the storm's shape.
package fleet

import (
	"context"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/agent"
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
}

// Fleet is a running simulation.
type Fleet struct {
	cfg   Config
	start time.Time
	slots chan struct{}
	// keygen bounds the agents making keys at once to the CPUs. Real
	// agents make theirs on their own CPUs; here 100,000 agents starting
	// together would otherwise all be runnable at once, and an agent whose
	// TLS handshake had just finished could wait seconds in the run queue
	// behind them to send its request, past the CA's 5 s header bound.
	keygen chan struct{}
	stats  *Stats
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
	f := &Fleet{cfg: cfg, start: time.Now(), slots: make(chan struct{}, cfg.MaxInFlight),
		keygen: make(chan struct{}, runtime.GOMAXPROCS(0)), stats: newStats()}
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
		got, key, renewal, err := f.request(ctx, cl, held, heldKey, true)
		if err != nil && renewal && rotor.ErrorCodeOf(err) == rotor.EUnauthenticated {
			got, key, renewal, err = f.request(ctx, cl, held, heldKey, false)
		}
		if ctx.Err() != nil && err != nil {
			return // the run ended under this request: not the CA's doing
		}
		if err != nil {
			if !sleep(ctx, f.retryWait(err, held)) {
				return
			}
			continue
		}
		if renewal {
			renewals++
		}
		held, heldKey = got, key
		at := agent.NextRenewal(got.Leaf, time.Now(), got.RenewAfter, agent.DefaultRenewBefore, rand.Float64())
		if !sleep(ctx, time.Until(at)) {
			return
		}
		f.stats.begin(time.Since(f.start))
	}
}

// retryWait is how long an agent holding held waits after err: the CA's
// Retry-After (a second without one) and up to a quarter more, but no
// later than its certificate can authenticate the retry, as rotor-agent.
func (f *Fleet) retryWait(err error, held *client.Issued) time.Duration {
	wait := client.RetryAfter(err)
	if wait == 0 {
		wait = time.Second
	}
	wait += time.Duration(rand.Int64N(int64(wait)/4 + 1))
	if held != nil {
		if left := time.Until(held.NotAfter.Add(-renewMargin)); left > 0 {
			wait = min(wait, left)
		}
	}
	return wait
}

// renewMargin is how long before its expiry an agent stops presenting a
// certificate: rotor-agent's for lifetimes of 20 seconds and more.
const renewMargin = time.Second

// request makes a key and asks for a certificate: by mTLS with held (nil
// before the first) while it is valid and mtls is set (renewal), else by
// token. Each request is a fresh connection: mTLS ones by client/'s
// design, token ones because cl's pool is emptied.
func (f *Fleet) request(ctx context.Context, cl *client.Client, held *client.Issued, heldKey any, mtls bool) (
	got *client.Issued, key any, renewal bool, err error) {
	f.keygen <- struct{}{}
	signer, csr, err := load.NewKeyCSR()
	<-f.keygen
	if err != nil {
		return nil, nil, false, err
	}
	f.slots <- struct{}{}
	// Decided once a slot is free: a certificate that expired while its
	// agent waited must not be presented.
	req := client.IssueRequest{CSR: csr, Token: f.cfg.Token}
	renewal = mtls && held != nil && time.Until(held.NotAfter) > renewMargin
	if renewal {
		req = client.IssueRequest{CSR: csr, ClientCertificate: load.KeyPair(held, heldKey)}
	}
	t0 := time.Now()
	got, err = cl.Issue(ctx, req)
	lat := time.Since(t0)
	<-f.slots
	cl.CloseIdleConnections()
	if ctx.Err() == nil || err == nil {
		f.stats.note(time.Since(f.start), lat, kindOf(renewal, held != nil), got, err)
	}
	return got, signer, renewal, err
}

// kindOf is what a request was: over mTLS, by token for a first
// certificate, or by token after one.
func kindOf(mtls, had bool) kind {
	switch {
	case mtls:
		return renewed
	case had:
		return reissued
	}
	return first
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
