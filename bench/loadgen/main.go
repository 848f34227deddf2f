// Command loadgen measures a running rotor-ca the way PEERS.md measured
// step-ca and cfssl: HTTPS with keep-alive, presigned P-256 CSRs, c
// concurrent clients for a fixed time, then issued/s and latency
// percentiles. It sends traffic only to the --url it is given, and stops by
// itself after --duration.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
)

// load is one run's settings.
type load struct {
	url, bundleFile, tokenFile string
	conc, csrs                 int
	duration                   time.Duration
}

func main() {
	var l load
	flag.StringVar(&l.url, "url", "https://127.0.0.1:8443", "rotor-ca base URL (loopback only)")
	flag.StringVar(&l.bundleFile, "ca-bundle", "./rotor-data/root.crt", "root certificate(s) that verify the CA")
	flag.StringVar(&l.tokenFile, "token-file", "", "file holding the bearer token (required)")
	flag.IntVar(&l.conc, "c", 64, "concurrent clients")
	flag.DurationVar(&l.duration, "duration", 15*time.Second, "how long to send requests")
	flag.IntVar(&l.csrs, "csrs", 256, "distinct presigned CSRs, reused round-robin")
	flag.Parse()
	if err := l.run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// result is what the clients saw: the latency of each 201, and the count
// of every answer by status ("error" for none).
type result struct {
	mu        sync.Mutex
	latencies []time.Duration
	statuses  map[string]int
}

func (l load) run() error {
	if !strings.HasPrefix(l.url, "https://127.") && !strings.HasPrefix(l.url, "https://localhost") && !strings.HasPrefix(l.url, "https://[::1]") {
		return fmt.Errorf("--url %s is not a loopback address", l.url)
	}
	client, token, bodies, err := l.prepare()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.duration)
	defer cancel()
	res := &result{statuses: map[string]int{}}
	var wg sync.WaitGroup
	start := time.Now()
	for w := range l.conc {
		wg.Go(func() { l.worker(ctx, client, token, bodies, w, res) })
	}
	wg.Wait()
	return res.report(l.conc, time.Since(start))
}

// prepare reads the token and roots and presigns the CSRs.
func (l load) prepare() (*http.Client, string, [][]byte, error) {
	if l.tokenFile == "" {
		return nil, "", nil, fmt.Errorf("--token-file is required")
	}
	tokenBytes, err := os.ReadFile(l.tokenFile)
	if err != nil {
		return nil, "", nil, err
	}
	rootsPEM, err := os.ReadFile(l.bundleFile)
	if err != nil {
		return nil, "", nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootsPEM) {
		return nil, "", nil, fmt.Errorf("no certificates in %s", l.bundleFile)
	}
	bodies := make([][]byte, l.csrs)
	for i := range bodies {
		key, err := rotor.GenerateKey(rotor.ECDSAP256, nil)
		if err != nil {
			return nil, "", nil, err
		}
		der, err := client.NewCSR(key)
		if err != nil {
			return nil, "", nil, err
		}
		bodies[i], _ = json.Marshal(rotor.IssueBody{CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))})
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots},
		MaxIdleConnsPerHost: l.conc, MaxConnsPerHost: l.conc,
	}}
	return hc, strings.TrimSpace(string(tokenBytes)), bodies, nil
}

// worker issues until ctx ends and adds what it saw to res.
func (l load) worker(ctx context.Context, hc *http.Client, token string, bodies [][]byte, w int, res *result) {
	var mine []time.Duration
	statuses := map[string]int{}
	for i := w; ctx.Err() == nil; i += l.conc {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, l.url+"/v1/certificates", bytes.NewReader(bodies[i%len(bodies)]))
		req.Header.Set("Content-Type", rotor.MediaJSON)
		req.Header.Set("Authorization", "Bearer "+token)
		t0 := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				statuses["error"]++
			}
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		statuses[fmt.Sprint(resp.StatusCode)]++
		if resp.StatusCode == http.StatusCreated {
			mine = append(mine, time.Since(t0))
		}
	}
	res.mu.Lock()
	defer res.mu.Unlock()
	res.latencies = append(res.latencies, mine...)
	for k, v := range statuses {
		res.statuses[k] += v
	}
}

// report prints one line of figures; no certificate at all is an error.
func (r *result) report(conc int, elapsed time.Duration) error {
	slices.Sort(r.latencies)
	pct := func(p float64) time.Duration {
		if len(r.latencies) == 0 {
			return 0
		}
		return r.latencies[min(len(r.latencies)-1, int(float64(len(r.latencies))*p))]
	}
	fmt.Printf("c=%d duration=%s issued=%d issued/s=%.0f p50=%s p99=%s statuses=%v\n",
		conc, elapsed.Round(time.Millisecond), len(r.latencies), float64(len(r.latencies))/elapsed.Seconds(),
		pct(0.50).Round(100*time.Microsecond), pct(0.99).Round(100*time.Microsecond), r.statuses)
	if r.statuses["201"] == 0 {
		return fmt.Errorf("no certificate issued: %v", r.statuses)
	}
	return nil
}
