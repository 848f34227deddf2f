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

// MTLSTraffic is an HTTPS client that makes a fresh mutual TLS handshake
// for every request, a few milliseconds apart, until Stop, against its own
// server (StartMTLSTraffic) or another program (StartMTLSClient): the load
// under which a rotation must not fail one request. Requests are counted
// by the step (Phase) under way, and what each answer shows is noted: the
// issuers of both sides' certificates (by authority key ID) from our own
// server, the server's leaf serials from any.
type MTLSTraffic struct {
	cancel context.CancelFunc
	done   chan struct{}
	check  func(*MTLSTraffic, *http.Response, []byte) error

	mu       sync.Mutex
	err      error
	current  string         // the step under way
	requests map[string]int // by step
	issuers  map[string]bool
	serials  map[string]bool // of the server's leaf certificates
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
	return startClient(t, "https://"+ln.Addr().String(), clientTLS, first, (*MTLSTraffic).noteIssuers)
}

// noteIssuers notes the issuers of both sides' certificates: the server's
// from the handshake, the client's from StartMTLSTraffic's answer.
func (m *MTLSTraffic) noteIssuers(resp *http.Response, body []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.issuers["client:"+string(body)] = true
	m.issuers["server:"+hex.EncodeToString(resp.TLS.PeerCertificates[0].AuthorityKeyId)] = true
	return nil
}

// StartMTLSClient requests url with clientTLS, a new connection and
// handshake each time, until Stop or the end of t. A request fails unless
// it is answered 200 and check (if not nil) accepts the answer; check is
// called on the client's goroutine.
func StartMTLSClient(t testing.TB, url string, clientTLS *tls.Config, first string,
	check func(resp *http.Response, body []byte) error) *MTLSTraffic {
	t.Helper()
	return startClient(t, url, clientTLS, first, func(_ *MTLSTraffic, resp *http.Response, body []byte) error {
		if check == nil {
			return nil
		}
		return check(resp, body)
	})
}

// startClient is StartMTLSClient with a check that may note what it saw
// in m.
func startClient(t testing.TB, url string, clientTLS *tls.Config, first string,
	check func(m *MTLSTraffic, resp *http.Response, body []byte) error) *MTLSTraffic {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: clientTLS, DisableKeepAlives: true}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	m := &MTLSTraffic{cancel: cancel, done: make(chan struct{}), check: check, current: first,
		requests: map[string]int{}, issuers: map[string]bool{}, serials: map[string]bool{}}
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			err := m.request(hc, url)
			m.mu.Lock()
			if err != nil && m.err == nil {
				m.err = fmt.Errorf("step %s, request %d: %w", m.current, m.requests[m.current]+1, err)
			}
			m.requests[m.current]++
			m.mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return m
}

// request makes one handshake and has the answer checked.
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
	m.serials[resp.TLS.PeerCertificates[0].SerialNumber.Text(16)] = true
	m.mu.Unlock()
	return m.check(m, resp, body)
}

// ServerSerials is how many distinct server leaf certificates the
// requests met: with a server that rotates, one more per rotation served.
func (m *MTLSTraffic) ServerSerials() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.serials)
}

// Err is the first failed request's error, nil while none failed: a
// test waiting for something can stop waiting once the run has failed.
func (m *MTLSTraffic) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// Requests is how many requests were made so far, in every step.
func (m *MTLSTraffic) Requests() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, c := range m.requests {
		n += c
	}
	return n
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
