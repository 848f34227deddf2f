package api_test

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/testenv"
	"github.com/rotor-dev/rotor/internal/testpki"
)

// tcpProxy forwards TCP connections to target until cut, which closes its
// listener and every live connection at once: the database "goes away"
// mid-flight, as a network partition or a failover does.
type tcpProxy struct {
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	down  bool
	conns map[net.Conn]struct{}
}

func startProxy(t testing.TB, target string) *tcpProxy {
	t.Helper()
	p := &tcpProxy{target: target, conns: map[net.Conn]struct{}{}}
	p.listen(t, "127.0.0.1:0")
	p.addr = p.ln.Addr().String()
	t.Cleanup(p.cut)
	return p
}

func (p *tcpProxy) listen(t testing.TB, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("proxy listen on %s: %v", addr, err)
	}
	p.mu.Lock()
	p.ln, p.down = ln, false
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.pipe(c)
		}
	}()
}

// pipe copies both ways until either side closes.
func (p *tcpProxy) pipe(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	p.mu.Lock()
	if p.down { // accepted just before the cut
		p.mu.Unlock()
		client.Close()
		server.Close()
		return
	}
	p.conns[client], p.conns[server] = struct{}{}, struct{}{}
	p.mu.Unlock()
	go func() { _, _ = io.Copy(server, client); server.Close() }()
	_, _ = io.Copy(client, server)
	client.Close()
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, server)
	p.mu.Unlock()
}

// cut stops accepting and kills every live connection.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	if p.ln != nil {
		p.ln.Close()
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// restore listens again on the same address.
func (p *tcpProxy) restore(t testing.TB) { p.listen(t, p.addr) }

// TestStoreOutage cuts a real Postgres away mid-run: issuance must answer
// 503 store-unavailable and hand out nothing, both when the token cannot
// be looked up and when a renewal (mTLS, no lookup) was already signed but
// cannot be recorded; once the database is back, issuance works again, and
// the rows match the 201s exactly.
func TestStoreOutage(t *testing.T) {
	t.Parallel()
	direct := testenv.PostgresURL(t)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startProxy(t, u.Host)
	u.Host = proxy.addr
	e := newEnv(t, u.String(), envConfig{})

	key := testpki.Key(t, "ecdsa-p256")
	byToken := call{Method: http.MethodPost, Path: "/v1/certificates",
		Header: withType(bearer(e.token), "application/pkcs10"), Body: testpki.CSR(t, key, nil)}
	first := e.do(t, byToken)
	if first.Status != http.StatusCreated {
		t.Fatalf("before the outage: status %d: %s", first.Status, first.Body)
	}
	out, _ := checkIssued(t, e, first.Body, key, webapp)
	cert, err := tls.X509KeyPair([]byte(out.Certificate+out.Chain), pemKey(t, key))
	if err != nil {
		t.Fatal(err)
	}
	byMTLS := call{Method: http.MethodPost, Path: "/v1/certificates", Client: e.client(&cert),
		Header: http.Header{"Content-Type": {"application/pkcs10"}}, Body: testpki.CSR(t, key, nil)}

	proxy.cut()
	for name, c := range map[string]call{"token": byToken, "mtls": byMTLS} {
		r := e.do(t, c)
		p := r.problem(t)
		if r.Status != http.StatusServiceUnavailable || p.Type != rotor.EStoreUnavailable.ProblemType() {
			t.Errorf("%s during the outage: status %d type %s", name, r.Status, p.Type)
		}
		if bytes.Contains(r.Body, []byte("CERTIFICATE")) || r.Header.Get("Retry-After") == "" {
			t.Errorf("%s during the outage: Retry-After %q, body %s", name, r.Header.Get("Retry-After"), r.Body)
		}
	}
	for _, path := range []string{"/readyz", "/v1/certificates/" + out.Serial, "/v1/renewal-info/" + out.Serial} {
		r := e.do(t, call{Method: http.MethodGet, Path: path, Header: bearer(e.token)})
		if r.Status != http.StatusServiceUnavailable || r.problem(t).Type != rotor.EStoreUnavailable.ProblemType() {
			t.Errorf("%s during the outage: %d %s", path, r.Status, r.Body)
		}
	}

	proxy.restore(t)
	// The pool notices its dead connections one failed use at a time; give
	// it a bounded number of tries, then require success.
	var after *response
	for range 50 {
		if after = e.do(t, byMTLS); after.Status == http.StatusCreated {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if after.Status != http.StatusCreated {
		t.Fatalf("after the outage: status %d: %s", after.Status, after.Body)
	}
	checkIssued(t, e, after.Body, key, webapp)
	if n := countRows(t, direct, "SELECT count(*) FROM issuances"); n != 2 {
		t.Errorf("%d issuance rows, want the 2 answered with 201", n)
	}
}
