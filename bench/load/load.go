// Package load drives running CAs the way PEERS.md measured Rotor's peers:
// HTTPS with keep-alive, presigned P-256 CSRs, c concurrent clients for a
// fixed time or a fixed number of requests, then issued/s, latency
// percentiles and errors by cause. bench/loadgen is its command line and
// bench/cmd/bench runs it against each system it measures.
package load

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
)

// Config is one run's settings.
type Config struct {
	// URLs are the CAs' base URLs, all on loopback. Worker w sends to
	// URLs[w%len(URLs)], so connections spread evenly over replicas.
	URLs  []string
	Roots *x509.CertPool
	// Token authenticates every request with "Authorization: Bearer";
	// ClientCert, if set, is presented over mTLS instead (or as well).
	Token      string
	ClientCert *tls.Certificate
	Conc       int           // concurrent clients
	Duration   time.Duration // how long to send requests, when N is zero
	N          int           // requests in all; zero means run for Duration
	CSRs       int           // distinct presigned CSRs, reused round-robin
	// KeepSerials keeps the serial of every 201 in the Result, to check
	// afterwards that each has exactly one audit row.
	KeepSerials bool
}

// check refuses settings that would send traffic anywhere but loopback
// or could not run.
func (c Config) check() error {
	if len(c.URLs) == 0 || c.Conc < 1 || c.CSRs < 1 || (c.N <= 0 && c.Duration <= 0) {
		return fmt.Errorf("load: need at least one URL, c >= 1, csrs >= 1 and a duration or a count")
	}
	if c.Token == "" && c.ClientCert == nil {
		return fmt.Errorf("load: need a token or a client certificate")
	}
	for _, raw := range c.URLs {
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "https" || !loopback(u.Hostname()) {
			return fmt.Errorf("load: %s is not an https:// loopback URL", raw)
		}
	}
	return nil
}

// loopback reports whether host names this machine: nothing but
// 127.0.0.1 (and friends) is ever measured.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Bodies presigns n P-256 CSRs as the JSON bodies of POST
// /v1/certificates, as a fleet's agents would have them ready.
func Bodies(n int) ([][]byte, error) {
	bodies := make([][]byte, n)
	for i := range bodies {
		_, der, err := NewKeyCSR()
		if err != nil {
			return nil, err
		}
		pemCSR := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
		if bodies[i], err = json.Marshal(rotor.IssueBody{CSR: string(pemCSR)}); err != nil {
			return nil, fmt.Errorf("load: encode body: %w", err)
		}
	}
	return bodies, nil
}

// NewKeyCSR makes a P-256 key and a CSR (DER) signed by it, as an agent
// does for each certificate.
func NewKeyCSR() (crypto.Signer, []byte, error) {
	key, err := rotor.GenerateKey(rotor.ECDSAP256, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("load: generate key: %w", err)
	}
	der, err := client.NewCSR(key)
	if err != nil {
		return nil, nil, fmt.Errorf("load: sign CSR: %w", err)
	}
	return key, der, nil
}

// httpClient pools up to c connections per CA, kept alive.
func (c Config) httpClient() *http.Client {
	conf := &tls.Config{RootCAs: c.Roots, MinVersion: tls.VersionTLS12}
	if c.ClientCert != nil {
		conf.Certificates = []tls.Certificate{*c.ClientCert}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: conf, MaxIdleConnsPerHost: c.Conc, MaxConnsPerHost: c.Conc,
		ForceAttemptHTTP2: false, // HTTP/1.1 as the peers were measured
	}}
}
