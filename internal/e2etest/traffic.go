package e2etest

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// MTLSTraffic is an HTTPS server and a client that make a fresh mutual
// TLS handshake for every request, a few milliseconds apart, until Stop:
// the load under which a rotation must not fail one request. Requests are
// counted by the step (Phase) under way, and the issuers of both sides'
// certificates (by authority key ID) are noted.
type MTLSTraffic struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	err      error
	current  string         // the step under way
	requests map[string]int // by step
	issuers  map[string]bool
}

// StartMTLSTraffic serves with serverTLS and requests with clientTLS,
// which decide what each side presents and whom it accepts; everything
// stops when t ends. first names the step under way until the first Phase.
func StartMTLSTraffic(t testing.TB, serverTLS, clientTLS *tls.Config, first string) *MTLSTraffic {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{TLSConfig: serverTLS, ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0), // a failed handshake shows as the client's error
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, hex.EncodeToString(r.TLS.PeerCertificates[0].AuthorityKeyId))
		})}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	hc := &http.Client{Timeout: 5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: clientTLS, DisableKeepAlives: true}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	m := &MTLSTraffic{cancel: cancel, done: make(chan struct{}), current: first, requests: map[string]int{},
		issuers: map[string]bool{}}
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			err := m.request(hc, "https://"+ln.Addr().String())
			m.mu.Lock()
			if err != nil && m.err == nil {
				m.err = fmt.Errorf("step %s: %w", m.current, err)
			}
			m.requests[m.current]++
			m.mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return m
}

// request makes one handshake and notes which issuers (by key ID) the two
// sides' certificates came from.
func (m *MTLSTraffic) request(hc *http.Client, url string) error {
	resp, err := hc.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d %q: %v", resp.StatusCode, body, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.issuers["client:"+string(body)] = true
	m.issuers["server:"+hex.EncodeToString(resp.TLS.PeerCertificates[0].AuthorityKeyId)] = true
	return nil
}

// Phase starts counting requests under a new step, once the step before
// it saw five at least (at once if that step has no name).
func (m *MTLSTraffic) Phase(name string) {
	for {
		m.mu.Lock()
		if m.requests[m.current] >= 5 || m.current == "" {
			m.current = name
			m.mu.Unlock()
			return
		}
		m.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop ends the traffic and fails t if any request failed; it logs the
// requests made in each step.
func (m *MTLSTraffic) Stop(t testing.TB) {
	t.Helper()
	m.cancel()
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		t.Fatalf("an mTLS request failed: %v (requests by step: %v)", m.err, m.requests)
	}
	t.Logf("mTLS requests by step, all successful: %v", m.requests)
}

// Saw reports whether both sides presented a certificate from the issuer
// with key ID id (hex).
func (m *MTLSTraffic) Saw(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.issuers["client:"+id] && m.issuers["server:"+id]
}

// Issuers lists the issuers seen, as "client:<key ID>" and "server:<key
// ID>", for a failure message.
func (m *MTLSTraffic) Issuers() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.issuers {
		out = append(out, k)
	}
	return out
}
