// Command loadgen measures a running rotor-ca the way PEERS.md measured
// step-ca and cfssl: HTTPS with keep-alive, presigned P-256 CSRs, c
// concurrent clients for a fixed time, then issued/s and latency
// percentiles. It sends traffic only to the --url it is given, and stops by
// itself after --duration.
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
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
)

func main() {
	url := flag.String("url", "https://127.0.0.1:8443", "rotor-ca base URL (loopback only)")
	bundle := flag.String("ca-bundle", "./rotor-data/root.crt", "root certificate(s) that verify the CA")
	tokenFile := flag.String("token-file", "", "file holding the bearer token (required)")
	conc := flag.Int("c", 64, "concurrent clients")
	duration := flag.Duration("duration", 15*time.Second, "how long to send requests")
	csrs := flag.Int("csrs", 256, "distinct presigned CSRs, reused round-robin")
	flag.Parse()
	if err := run(*url, *bundle, *tokenFile, *conc, *duration, *csrs); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(url, bundleFile, tokenFile string, conc int, duration time.Duration, ncsr int) error {
	if !strings.HasPrefix(url, "https://127.") && !strings.HasPrefix(url, "https://localhost") && !strings.HasPrefix(url, "https://[::1]") {
		return fmt.Errorf("--url %s is not a loopback address", url)
	}
	if tokenFile == "" {
		return fmt.Errorf("--token-file is required")
	}
	tokenBytes, err := os.ReadFile(tokenFile)
	if err != nil {
		return err
	}
	token := strings.TrimSpace(string(tokenBytes))
	rootsPEM, err := os.ReadFile(bundleFile)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootsPEM) {
		return fmt.Errorf("no certificates in %s", bundleFile)
	}
	bodies := make([][]byte, ncsr)
	for i := range bodies {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
		if err != nil {
			return err
		}
		bodies[i], _ = json.Marshal(map[string]string{"csr": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))})
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots},
		MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc,
	}}

	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var mu sync.Mutex
	var latencies []time.Duration
	statuses := map[string]int{}
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var mine []time.Duration
			mineStatus := map[string]int{}
			for i := w; ctx.Err() == nil; i += conc {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/certificates", bytes.NewReader(bodies[i%len(bodies)]))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+token)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						mineStatus["error"]++
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mineStatus[fmt.Sprint(resp.StatusCode)]++
				if resp.StatusCode == http.StatusCreated {
					mine = append(mine, time.Since(t0))
				}
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			for k, v := range mineStatus {
				statuses[k] += v
			}
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(latencies)
	pct := func(p float64) time.Duration {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[min(len(latencies)-1, int(float64(len(latencies))*p))]
	}
	fmt.Printf("c=%d duration=%s issued=%d issued/s=%.0f p50=%s p99=%s statuses=%v\n",
		conc, elapsed.Round(time.Millisecond), len(latencies), float64(len(latencies))/elapsed.Seconds(),
		pct(0.50).Round(100*time.Microsecond), pct(0.99).Round(100*time.Microsecond), statuses)
	if statuses["201"] == 0 {
		return fmt.Errorf("no certificate issued: %v", statuses)
	}
	return nil
}
