package api_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/internal/testpki"
)

// testTimeouts are short, so the slow clients below are cut off in a
// fraction of a second.
var testTimeouts = api.Timeouts{Handshake: 2 * time.Second, Header: 300 * time.Millisecond, Request: 800 * time.Millisecond,
	Write: 3 * time.Second, Idle: 500 * time.Millisecond, MaxHeaderBytes: 4 << 10}

// rawConn is one TLS connection driven byte by byte, as a slow or broken
// client would.
type rawConn struct {
	*tls.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, e *env) *rawConn {
	t.Helper()
	c, err := tls.Dial("tcp", strings.TrimPrefix(e.URL, "https://"),
		&tls.Config{RootCAs: e.roots, ServerName: "ca.rotor.test", MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{Conn: c, r: bufio.NewReader(c)}
}

// dribble writes s one byte every gap until the server closes the
// connection (a write fails) or stop is closed.
func (c *rawConn) dribble(s string, gap time.Duration, stop <-chan struct{}) {
	go func() {
		for i := 0; i < len(s); i++ {
			select {
			case <-stop:
				return
			case <-time.After(gap):
			}
			if _, err := c.Write([]byte{s[i]}); err != nil {
				return
			}
		}
	}()
}

// closedWithin reads until the server ends the connection and reports how
// long that took and the status line of any answer; limit only stops a
// hung test.
func (c *rawConn) closedWithin(t *testing.T, limit time.Duration) (time.Duration, string) {
	t.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(limit))
	status, _ := c.r.ReadString('\n')
	_, err := io.Copy(io.Discard, c.r)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server kept the connection for over %v", limit)
	}
	return time.Since(start), strings.TrimSpace(status)
}

// TestSlowClients holds each phase of a connection to its bound with real
// slow sockets: headers that never end, a body that comes one byte at a
// time or never, headers past the size cap, an idle keep-alive, and a
// client that never authenticates but announces a body. In every case the
// server ends the connection within the phase's timeout (plus slack for a
// loaded machine), and no handler waits for a body it should not read.
func TestSlowClients(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sqliteURL(t), envConfig{serve: &testTimeouts})
	headers := func(token string, length int) string {
		return fmt.Sprintf("POST /v1/certificates HTTP/1.1\r\nHost: ca.rotor.test\r\nAuthorization: Bearer %s\r\n"+
			"Content-Type: application/pkcs10\r\nContent-Length: %d\r\n\r\n", token, length)
	}
	const slack = 2 * time.Second
	tests := []struct {
		name   string
		send   func(c *rawConn, stop <-chan struct{})
		bound  time.Duration
		status string // prefix of the answer's status line; "" for any
	}{
		// net/http answers a timed-out header read with a plain 400 or not
		// at all; the bound is what matters.
		{"fail/headers-dribbled", func(c *rawConn, stop <-chan struct{}) {
			c.dribble(headers(e.token, 1000), 50*time.Millisecond, stop)
		}, testTimeouts.Header, ""},
		{"fail/body-dribbled", func(c *rawConn, stop <-chan struct{}) {
			_, _ = c.Write([]byte(headers(e.token, 1000)))
			c.dribble(strings.Repeat("A", 1000), 100*time.Millisecond, stop)
		}, testTimeouts.Request, ""},
		{"fail/body-never-sent", func(c *rawConn, _ <-chan struct{}) {
			_, _ = c.Write([]byte(headers(e.token, 1000)))
		}, testTimeouts.Request, ""},
		// Refused from its headers: answered at once and cut off, without
		// waiting for the body it announced.
		{"fail/unauthenticated-with-body-pending", func(c *rawConn, stop <-chan struct{}) {
			_, _ = c.Write([]byte(headers("rotor_nottherightone", 1000)))
			c.dribble(strings.Repeat("A", 1000), 100*time.Millisecond, stop)
		}, 100 * time.Millisecond, "HTTP/1.1 401"},
		{"fail/headers-too-large", func(c *rawConn, _ <-chan struct{}) {
			_, _ = c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: ca.rotor.test\r\nX-Pad: " + strings.Repeat("a", 8<<10) + "\r\n\r\n"))
		}, testTimeouts.Header, "HTTP/1.1 431"},
		{"ok/idle-keep-alive-closed", func(c *rawConn, _ <-chan struct{}) {
			_, _ = c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: ca.rotor.test\r\n\r\n"))
		}, testTimeouts.Idle, "HTTP/1.1 200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := dialRaw(t, e)
			stop := make(chan struct{})
			defer close(stop)
			tt.send(c, stop)
			took, status := c.closedWithin(t, tt.bound+10*time.Second)
			if took > tt.bound+slack {
				t.Errorf("connection ended after %v, want within %v (+%v slack)", took.Round(time.Millisecond), tt.bound, slack)
			}
			if !strings.HasPrefix(status, tt.status) {
				t.Errorf("answer %q, want %q", status, tt.status)
			}
		})
	}
}

// clientHello is the first flight of a real TLS client for the env's
// server: a ClientHello record, bytes a test can send and then stall.
func clientHello(t *testing.T, e *env) []byte {
	t.Helper()
	client, server := net.Pipe()
	defer server.Close()
	go func() {
		_ = tls.Client(client, &tls.Config{RootCAs: e.roots, ServerName: "ca.rotor.test"}).Handshake()
		client.Close()
	}()
	header := make([]byte, 5)
	if _, err := io.ReadFull(server, header); err != nil {
		t.Fatal(err)
	}
	record := make([]byte, 5+int(header[3])<<8|int(header[4]))
	copy(record, header)
	if _, err := io.ReadFull(server, record[5:]); err != nil {
		t.Fatal(err)
	}
	return record
}

func dialTCP(t *testing.T, e *env) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(e.URL, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// slowWriter delays a connection's first write, as a client on a slow or
// busy host would start its handshake late.
type slowWriter struct {
	net.Conn
	delay time.Duration
	once  sync.Once
}

func (c *slowWriter) Write(p []byte) (int, error) {
	c.once.Do(func() { time.Sleep(c.delay) })
	return c.Conn.Write(p)
}

// TestSlowHandshakes holds the TLS handshake to its own bound: a client
// that never says hello, or stalls after it, is cut off at the handshake
// bound; and an honest handshake slower than the header bound completes,
// because the header bound no longer cuts handshakes short.
func TestSlowHandshakes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sqliteURL(t), envConfig{serve: &testTimeouts})
	hello := clientHello(t, e)
	const slack = 2 * time.Second
	for _, tt := range []struct {
		name string
		send []byte
	}{
		{"fail/nothing-sent", nil},
		{"fail/stalled-after-hello", hello},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := dialTCP(t, e)
			start := time.Now()
			if _, err := c.Write(tt.send); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(start.Add(testTimeouts.Handshake + 10*time.Second))
			_, err := io.Copy(io.Discard, c)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the server kept the connection for over 10 s past its handshake bound")
			}
			if took := time.Since(start); took > testTimeouts.Handshake+slack || took < testTimeouts.Handshake-100*time.Millisecond {
				t.Errorf("connection ended after %v, want at the handshake bound %v", took.Round(time.Millisecond), testTimeouts.Handshake)
			}
		})
	}
	t.Run("ok/slower-than-the-header-bound", func(t *testing.T) {
		t.Parallel()
		client := e.client(nil)
		tr := client.Transport.(*http.Transport)
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &slowWriter{Conn: c, delay: testTimeouts.Request + 200*time.Millisecond}, nil
		}
		resp, err := client.Get(e.URL + "/healthz")
		if err != nil {
			t.Fatalf("handshake started %v late: %v", testTimeouts.Request+200*time.Millisecond, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /healthz: %d", resp.StatusCode)
		}
	})
}

// TestHandshakeGateNotHeldByStallers: the server computes handshakes a few
// at a time, and a client that sends its hello and then stalls does not
// keep a place. Many times the gate's size in stalled clients each still
// get the server's answer to their hello, and an honest client meanwhile
// is served.
func TestHandshakeGateNotHeldByStallers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sqliteURL(t), envConfig{serve: &testTimeouts})
	hello := clientHello(t, e)
	stallers := 8 * runtime.GOMAXPROCS(0)
	conns := make([]net.Conn, stallers)
	for i := range conns {
		conns[i] = dialTCP(t, e)
		if _, err := conns[i].Write(hello); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(testTimeouts.Handshake / 2))
		if _, err := io.ReadFull(c, make([]byte, 5)); err != nil {
			t.Fatalf("staller %d of %d had no ServerHello: %v", i+1, stallers, err)
		}
	}
	resp, err := e.client(nil).Get(e.URL + "/healthz")
	if err != nil {
		t.Fatalf("honest client beside %d stalled handshakes: %v", stallers, err)
	}
	resp.Body.Close()
}

// TestHead: HEAD on every GET resource answers as GET does, without a body.
func TestHead(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sqliteURL(t), envConfig{})
	for _, path := range []string{"/v1/bundle", "/healthz", "/readyz", "/openapi.yaml", "/metrics", "/v1/certificates/ab", "/v1/renewal-info/ab"} {
		get := e.do(t, call{Method: http.MethodGet, Path: path})
		head := e.do(t, call{Method: http.MethodHead, Path: path})
		if head.Status != get.Status || len(head.Body) != 0 || head.Header.Get("Content-Type") != get.Header.Get("Content-Type") {
			t.Errorf("HEAD %s: %d, %d body bytes, %q; GET: %d, %q", path, head.Status, len(head.Body),
				head.Header.Get("Content-Type"), get.Status, get.Header.Get("Content-Type"))
		}
	}
}

// fromAddr is a client whose connections come from the loopback address
// ip (all of 127.0.0.0/8 is loopback).
func fromAddr(e *env, ip string) *http.Client {
	c := e.client(nil)
	tr := c.Transport.(*http.Transport)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr.DialContext = d.DialContext
	tr.MaxIdleConnsPerHost = 64
	return c
}

// TestRefusalFlood sends 10,000 requests with bad credentials from
// 127.0.0.2 while good callers issue from 127.0.0.1. The good callers
// never see an error; the flood is answered 401 until its source's bucket
// is spent (give or take the requests in flight), then 429 with
// Retry-After before any lookup; and the audit
// holds the source's budget of rows plus one summary that counts the rest,
// so the table grew by 21 rows, not 10,000.
func TestRefusalFlood(t *testing.T) {
	t.Parallel()
	storeURL := sqliteURL(t)
	const flood, burst, budget = 10000, 20, 20
	// A slow refill, so the flood's 401s are the burst whatever the
	// machine's speed.
	e := newEnv(t, storeURL, envConfig{
		sourceLimiter: &rotor.Limiter{Rate: 0.001, Burst: burst},
		budget:        rotor.RefusalBudget{Rows: budget, Interval: time.Hour}})
	ctx, cancel := context.WithCancel(context.Background())
	good := goodCallers(ctx, e, 4, testpki.CSR(t, testpki.Key(t, "ecdsa-p256"), nil))
	const workers = 16
	statuses := sendFlood(t, e, flood, workers)
	cancel()
	issued, failures := good()
	if len(failures) > 0 || issued == 0 {
		t.Fatalf("good callers during the flood: %d issued, failures %v", issued, failures)
	}
	// Requests that passed the check together before the bucket ran dry
	// are answered 401 too: at most one per worker beyond the burst.
	if statuses[401] < burst || statuses[401] > burst+workers || statuses[401]+statuses[429] != flood {
		t.Errorf("flood answered %v, want %d to %d x 401, the rest 429", statuses, burst, burst+workers)
	}
	e.ca.Close() // commits the pending summary
	rows := countRows(t, storeURL, "SELECT count(*) FROM refusals WHERE remote_addr LIKE '127.0.0.2:%'")
	summed := countRows(t, storeURL, "SELECT coalesce(sum(count), 0) FROM refusal_summaries WHERE source = '127.0.0.2'")
	viewed := countRows(t, storeURL, "SELECT sum(count) FROM refusal_counts WHERE source = '127.0.0.2'")
	if rows != budget || summed != flood-budget || viewed != flood {
		t.Errorf("refusal rows %d (want %d), summed %d (want %d), refusal_counts %d (want %d)",
			rows, budget, summed, flood-budget, viewed, flood)
	}
	t.Logf("flood of %d from 127.0.0.2: %v; %d issued to 127.0.0.1 meanwhile; audit grew by %d rows and 1 summary",
		flood, statuses, issued, rows)
}

// goodCallers issue from 127.0.0.1 with the env's token until ctx ends;
// the function returned waits for them and gives the issuances and every
// failure.
func goodCallers(ctx context.Context, e *env, n int, csr []byte) func() (int, []string) {
	var (
		wg       sync.WaitGroup
		issued   atomic.Int64
		mu       sync.Mutex
		failures []string
	)
	client := fromAddr(e, "127.0.0.1")
	for range n {
		wg.Go(func() {
			for ctx.Err() == nil {
				status, err := post(client, e.URL, e.token, csr)
				if err == nil && status == http.StatusCreated {
					issued.Add(1)
					continue
				}
				mu.Lock()
				failures = append(failures, fmt.Sprintf("%d %v", status, err))
				mu.Unlock()
			}
		})
	}
	return func() (int, []string) {
		wg.Wait()
		return int(issued.Load()), slices.Clip(failures)
	}
}

// sendFlood sends n requests with a bad token from 127.0.0.2 over conc
// kept-alive connections and counts the answers by status. They carry no
// body: one that does has its connection closed with the refusal, and the
// flood would measure TLS handshakes.
func sendFlood(t *testing.T, e *env, n, conc int) map[int]int {
	client := fromAddr(e, "127.0.0.2")
	var (
		wg   sync.WaitGroup
		next atomic.Int64
		mu   sync.Mutex
	)
	statuses := map[int]int{}
	for range conc {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				status, err := post(client, e.URL, rotor.TokenPrefix+"flood", nil)
				mu.Lock()
				statuses[status]++
				mu.Unlock()
				if err != nil {
					t.Errorf("flood request: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	return statuses
}
