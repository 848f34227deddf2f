// Command loadgen measures a running rotor-ca the way PEERS.md measured
// step-ca and cfssl: HTTPS with keep-alive, presigned P-256 CSRs, c
// concurrent clients for a fixed time (or count), then issued/s and latency
// percentiles. It sends traffic only to the loopback --url it is given,
// and stops by itself. The work is package bench/load's, which
// bench/cmd/bench shares.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/bench/load"
)

// options are the command line's settings.
type options struct {
	urls, bundleFile, tokenFile string
	mtls, jsonOut               bool
	cfg                         load.Config
}

func main() {
	var o options
	flag.StringVar(&o.urls, "url", "https://127.0.0.1:8443", "rotor-ca base URL(s), comma-separated: connections spread over them (loopback only)")
	flag.StringVar(&o.bundleFile, "ca-bundle", "./rotor-data/root.crt", "root certificate(s) that verify the CA")
	flag.StringVar(&o.tokenFile, "token-file", "", "file holding the bearer token (required)")
	flag.BoolVar(&o.mtls, "mtls", false, "get one certificate by token, then authenticate every request over mTLS with it")
	flag.BoolVar(&o.jsonOut, "json", false, "print the result as one JSON line")
	flag.IntVar(&o.cfg.Conc, "c", 64, "concurrent clients")
	flag.DurationVar(&o.cfg.Duration, "duration", 15*time.Second, "how long to send requests")
	flag.DurationVar(&o.cfg.Duration, "d", 15*time.Second, "short for --duration")
	flag.IntVar(&o.cfg.N, "n", 0, "requests in all, instead of --duration")
	flag.IntVar(&o.cfg.CSRs, "csrs", 256, "distinct presigned CSRs, reused round-robin")
	flag.Parse()
	if err := o.run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func (o options) run(ctx context.Context) error {
	if o.tokenFile == "" {
		return fmt.Errorf("--token-file is required")
	}
	tok, err := os.ReadFile(o.tokenFile)
	if err != nil {
		return err
	}
	if o.cfg.Roots, err = load.ReadRoots(o.bundleFile); err != nil {
		return err
	}
	o.cfg.URLs = strings.Split(o.urls, ",")
	o.cfg.Token = strings.TrimSpace(string(tok))
	if o.mtls {
		if o.cfg.ClientCert, err = load.ClientCertificate(ctx, o.cfg.URLs[0], o.cfg.Roots, o.cfg.Token); err != nil {
			return err
		}
		o.cfg.Token = ""
	}
	bodies, err := load.Bodies(o.cfg.CSRs)
	if err != nil {
		return err
	}
	res, err := load.Run(ctx, o.cfg, bodies)
	if err != nil {
		return err
	}
	o.print(res)
	if res.Issued == 0 {
		return fmt.Errorf("no certificate issued: %v", res.Errors)
	}
	return nil
}

// print writes one line of figures, as text or JSON.
func (o options) print(r *load.Result) {
	if o.jsonOut {
		b, _ := json.Marshal(r)
		fmt.Println(string(b))
		return
	}
	fmt.Printf("c=%d duration=%s issued=%d issued/s=%.0f p50=%s p95=%s p99=%s errors=%v\n",
		r.Conc, r.Elapsed.Round(time.Millisecond), r.Issued, r.PerSecond, r.P50.Round(100*time.Microsecond),
		r.P95.Round(100*time.Microsecond), r.P99.Round(100*time.Microsecond), r.Errors)
}
