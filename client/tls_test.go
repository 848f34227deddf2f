package client_test

import (
	"context"
	"crypto"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/internal/catest"
)

var backend = rotor.Identity{Namespace: "default", ServiceAccount: "backend"}

// workload keeps one identity's files fresh in its own directory, as the
// agent would.
type workload struct {
	t     testing.TB
	dir   string
	c     *client.Client
	token string
	ca    *catest.CA
}

func newWorkload(t testing.TB, ca *catest.CA, id rotor.Identity) *workload {
	w := &workload{t: t, dir: t.TempDir(), c: newClient(t, ca), token: ca.Token(t, id), ca: ca}
	w.rotate()
	return w
}

// rotate issues a certificate for a new key and swaps it in.
func (w *workload) rotate() {
	got, cert := issue(w.t, w.c, w.token)
	key, err := rotor.EncodePrivateKeyPEM(cert.PrivateKey.(crypto.Signer))
	if err != nil {
		w.t.Fatal(err)
	}
	if err := client.WriteFiles(w.dir, client.Files{Cert: got.PEM, Key: key, Bundle: w.ca.Bundle.PEM}, time.Now()); err != nil {
		w.t.Fatal(err)
	}
}

func (w *workload) source() *client.TLSSource {
	s, err := client.NewTLSSource(w.dir, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

// serveTLS serves h with conf on 127.0.0.1 (not httptest, which would put
// its own certificate in front of GetCertificate) and returns the URL.
func serveTLS(t *testing.T, conf *tls.Config, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, TLSConfig: conf, ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0)} // handshakes refused on purpose
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return "https://" + ln.Addr().String()
}

// echoPeer answers with the peer's identity and certificate serial.
func echoPeer(src *client.TLSSource) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := src.PeerIdentity(r.TLS)
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		fmt.Fprintf(w, "%s %s", id, r.TLS.PeerCertificates[0].SerialNumber.Text(16))
	})
}

// TestTLSSourceRotation: an mTLS client and server built on TLSSource keep
// talking while both rotate their certificates, with no failed request, and
// new handshakes use the new certificates.
func TestTLSSourceRotation(t *testing.T) {
	t.Parallel()
	ca := catest.New(t, catest.Options{})
	srvW, cliW := newWorkload(t, ca, backend), newWorkload(t, ca, webapp)
	srvSrc, cliSrc := srvW.source(), cliW.source()
	url := serveTLS(t, srvSrc.ServerConfig(webapp), echoPeer(srvSrc))
	// No keep-alive: every request is a new handshake, so each one tests
	// that the current files are picked up.
	hc := &http.Client{Timeout: 5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: cliSrc.ClientConfig(backend), DisableKeepAlives: true}}

	const rotations = 4
	var (
		mu                       sync.Mutex
		clientSerials, srvSerial = map[string]bool{}, map[string]bool{}
		requests                 int
	)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			resp, err := hc.Get(url)
			if err != nil {
				errc <- err
				return
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				errc <- fmt.Errorf("status %d %q: %v", resp.StatusCode, body, err)
				return
			}
			var who, serial string
			fmt.Sscan(string(body), &who, &serial)
			mu.Lock()
			requests++
			clientSerials[serial] = true
			srvSerial[resp.TLS.PeerCertificates[0].SerialNumber.Text(16)] = true
			mu.Unlock()
			if who != webapp.String() {
				errc <- fmt.Errorf("server saw %s, want %s", who, webapp)
				return
			}
		}
		errc <- nil
	}()
	wait := func(n int) { // until the loop has made n more requests
		mu.Lock()
		target := requests + n
		mu.Unlock()
		for {
			mu.Lock()
			r := requests
			mu.Unlock()
			if r >= target || ctx.Err() != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for range rotations {
		wait(5)
		srvW.rotate()
		wait(5)
		cliW.rotate()
	}
	wait(5)
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("request failed during rotation: %v", err)
	}
	if len(clientSerials) < rotations+1 || len(srvSerial) < rotations+1 {
		t.Errorf("saw %d client and %d server certificates over %d requests, want %d each",
			len(clientSerials), len(srvSerial), requests, rotations+1)
	}
	t.Logf("%d requests, %d client and %d server certificates, zero failures", requests, len(clientSerials), len(srvSerial))
}

// TestTLSSourcePeerChecks: peers are checked against the current bundle,
// the trust domain and the allow list, on both sides.
func TestTLSSourcePeerChecks(t *testing.T) {
	t.Parallel()
	ca, otherCA := catest.New(t, catest.Options{}), catest.New(t, catest.Options{})
	srvSrc := newWorkload(t, ca, backend).source()
	cliSrc := newWorkload(t, ca, webapp).source()
	// The stranger trusts our CA, so only the server's check of the
	// client's chain can stop it.
	stranger := newWorkload(t, otherCA, webapp)
	f, _, err := client.ReadFiles(stranger.dir)
	if err != nil {
		t.Fatal(err)
	}
	f.Bundle = ca.Bundle.PEM
	if err := client.WriteFiles(stranger.dir, f, time.Now()); err != nil {
		t.Fatal(err)
	}
	strangerSrc := stranger.source()
	admin := rotor.Identity{Namespace: "default", ServiceAccount: "admin"}
	tests := []struct {
		name        string
		serverAllow []rotor.Identity
		client      *client.TLSSource
		clientAllow []rotor.Identity
		wantOK      bool
	}{
		{name: "ok/allowed-both-ways", serverAllow: []rotor.Identity{webapp}, client: cliSrc,
			clientAllow: []rotor.Identity{backend}, wantOK: true},
		{name: "ok/any-identity", client: cliSrc, wantOK: true},
		{name: "fail/client-identity-not-allowed", serverAllow: []rotor.Identity{admin}, client: cliSrc},
		{name: "fail/server-identity-not-allowed", client: cliSrc, clientAllow: []rotor.Identity{admin}},
		{name: "fail/client-from-other-ca", client: strangerSrc},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := serveTLS(t, srvSrc.ServerConfig(tt.serverAllow...), echoPeer(srvSrc))
			hc := &http.Client{Timeout: 5 * time.Second,
				Transport: &http.Transport{TLSClientConfig: tt.client.ClientConfig(tt.clientAllow...)}}
			defer hc.CloseIdleConnections()
			resp, err := hc.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			if (err == nil) != tt.wantOK {
				t.Errorf("request error %v, want success %v", err, tt.wantOK)
			}
		})
	}
}

// TestTLSSourceKeepsGoodFiles: a version that does not load (here a key
// that is not the certificate's) is ignored and the previous one served.
func TestTLSSourceKeepsGoodFiles(t *testing.T) {
	t.Parallel()
	ca := catest.New(t, catest.Options{})
	w := newWorkload(t, ca, webapp)
	src := w.source()
	before := src.Certificate()
	f, _, err := client.ReadFiles(w.dir)
	if err != nil {
		t.Fatal(err)
	}
	f.Key, err = rotor.EncodePrivateKeyPEM(catest.NewKey(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := client.WriteFiles(w.dir, f, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := src.Certificate(); got != before {
		t.Error("a mismatched pair replaced the working one")
	}
	w.rotate()
	if got := src.Certificate(); got == before || src.Identity() != webapp {
		t.Error("a good version after a bad one was not picked up")
	}
	if _, err := client.NewTLSSource(t.TempDir(), nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("NewTLSSource on an empty directory: %v", err)
	}
}

// BenchmarkTLSSourceCheck is the per-handshake cost of following rotations
// when nothing changed: one readlink and an atomic load.
func BenchmarkTLSSourceCheck(b *testing.B) {
	ca := catest.New(b, catest.Options{})
	src := newWorkload(b, ca, webapp).source()
	for b.Loop() {
		if src.Certificate() == nil {
			b.Fatal("no certificate")
		}
	}
}

// BenchmarkTLSSourceHandshake is a full mTLS handshake (TLS 1.3, P-256) with
// both sides on TLSSource, over loopback.
func BenchmarkTLSSourceHandshake(b *testing.B) {
	ca := catest.New(b, catest.Options{})
	srv, cli := newWorkload(b, ca, backend).source(), newWorkload(b, ca, webapp).source()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv.ServerConfig(webapp))
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _ = c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	conf := cli.ClientConfig(backend)
	for b.Loop() {
		c, err := tls.Dial("tcp", ln.Addr().String(), conf)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
