package main

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/internal/e2etest"
	"github.com/rotor-dev/rotor/issuer"
)

// TestRootRotation takes a running fleet from root A to root B with the
// procedure of docs/root-rotation.md, step by step with the real rotor-ca
// and two real rotor-agents, while a Go mTLS client and server built on
// client.TLSSource over the agents' directories make a fresh handshake
// every few milliseconds. Not one request may fail.
func TestRootRotation(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; skipped with -short")
	}
	t.Parallel()
	agentBin := rotorAgent
	work := t.TempDir()
	caA, caB, data := filepath.Join(work, "ca-a"), filepath.Join(work, "ca-b"), filepath.Join(work, "data")
	conf, bundle := filepath.Join(work, "issuer.conf"), filepath.Join(work, "bundle.pem")
	initCA(t, nil, caA)
	copyFile(t, filepath.Join(caA, issuer.ConfigFile), conf)
	copyFile(t, filepath.Join(caA, issuer.BundleFile), bundle)
	ca := serveCA(t, nil, bundle, "--data-dir", data, "--issuer-config", conf, "--trust-bundle", bundle,
		"--cert-ttl", "6s", "--reload-interval", "0")

	server, clientID := rotor.Identity{Namespace: "mesh", ServiceAccount: "server"}, rotor.Identity{Namespace: "mesh", ServiceAccount: "client"}
	dirs := map[rotor.Identity]string{}
	for _, id := range []rotor.Identity{server, clientID} {
		tokenFile := filepath.Join(work, id.ServiceAccount+".token")
		if err := os.WriteFile(tokenFile, []byte(createToken(t, data, id.Namespace, id.ServiceAccount)), 0o600); err != nil {
			t.Fatal(err)
		}
		dirs[id] = filepath.Join(work, id.ServiceAccount)
		agentLog := filepath.Join(work, id.ServiceAccount+".log")
		e2etest.Start(t, agentLog, agentBin, "--ca-url", ca.URL, "--ca-bundle", filepath.Join(caA, issuer.RootCertFile),
			"--token-file", tokenFile, "--out-dir", dirs[id])
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("rotor-agent %s log:\n%s", id, e2etest.ReadFile(t, agentLog))
			}
		})
	}
	for _, dir := range dirs {
		e2etest.WaitFor(t, "the agents' first certificates", 30*time.Second, func() bool {
			_, _, err := client.ReadFiles(dir)
			return err == nil
		})
	}
	traffic := startMTLSTraffic(t, dirs[server], dirs[clientID], server, clientID)

	// Step 1: root B exists, with its issuer; the bundle serves A and B.
	initCA(t, nil, caB)
	rootB := readCerts(t, filepath.Join(caB, issuer.RootCertFile))[0]
	ca.Roots.AddCert(rootB) // the test's own client trusts the bundle, as agents do
	traffic.phase("1: root A only")
	e2etest.ReplaceFile(t, bundle, append(readFileBytes(t, filepath.Join(caA, issuer.RootCertFile)), readFileBytes(t, filepath.Join(caB, issuer.RootCertFile))...))
	ca.hup(t)
	traffic.phase("2: bundle A+B")

	// Step 2: wait until every live certificate went to a holder of B.
	rootsStatus := func() (string, int) {
		out, _, code := rotorCACmd(t, nil, "roots", "status", "--data-dir", data, "--root", filepath.Join(caB, issuer.RootCertFile))
		return out, code
	}
	if out, code := rootsStatus(); code != 3 {
		t.Fatalf("roots status right after adding B: exit %d, want 3 (not ready)\n%s", code, out)
	}
	e2etest.WaitFor(t, "every live certificate to go to a holder of root B", 40*time.Second, func() bool {
		_, code := rootsStatus()
		return code == 0
	})
	if out, _ := rootsStatus(); !strings.Contains(out, "live_identities=2 holding_new_root=2 missing=0\n") {
		t.Errorf("roots status when ready:\n%s", out)
	}
	// The store records the bundle an agent asked with; the agent writes
	// it beside the certificate once the answer arrives.
	for _, dir := range dirs {
		e2etest.WaitFor(t, "roots A and B in "+dir, 10*time.Second, func() bool {
			_, roots := agentFiles(t, dir)
			return len(roots) == 2
		})
	}

	// Step 3: switch the issuer to B's; every certificate issued from now
	// chains to B. Wait until the agents hold one and A's have expired.
	e2etest.ReplaceFile(t, conf, readFileBytes(t, filepath.Join(caB, issuer.ConfigFile)))
	ca.hup(t)
	traffic.phase("3: issuer B")
	for _, dir := range dirs {
		e2etest.WaitFor(t, "a certificate chained to B in "+dir, 30*time.Second, func() bool {
			certs, _ := agentFiles(t, dir)
			return chainsTo(certs, rootB)
		})
	}
	stillA := fmt.Sprintf(`SELECT count(*) FROM issuances WHERE issuer_key_id = '%s'
		AND not_after > strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now')`, keyID(t, caA))
	e2etest.WaitFor(t, "every certificate from issuer A to expire", 30*time.Second, func() bool {
		return countRows(t, filepath.Join(data, "rotor.db"), stillA) == 0
	})

	// Step 4: retire A; the agents pick up a bundle of B alone.
	copyFile(t, filepath.Join(caB, issuer.RootCertFile), bundle)
	ca.hup(t)
	traffic.phase("4: bundle B only")
	for _, dir := range dirs {
		e2etest.WaitFor(t, "a bundle without A in "+dir, 30*time.Second, func() bool {
			_, roots := agentFiles(t, dir)
			return len(roots) == 1 && roots[0].Equal(rootB)
		})
	}
	traffic.phase("done")
	traffic.stop(t)
	if !traffic.saw(keyID(t, caA)) || !traffic.saw(keyID(t, caB)) {
		t.Errorf("handshakes saw issuers %v; want A's and B's on both sides", traffic.issuers)
	}
}

// mtlsTraffic is a Go mTLS client and server on the agents' files,
// handshaking anew for every request.
type mtlsTraffic struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	err      error
	current  string         // the rotation step under way
	requests map[string]int // by step
	issuers  map[string]bool
}

func startMTLSTraffic(t *testing.T, serverDir, clientDir string, server, clientID rotor.Identity) *mtlsTraffic {
	t.Helper()
	srvSrc, err := client.NewTLSSource(serverDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	cliSrc, err := client.NewTLSSource(clientDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{TLSConfig: srvSrc.ServerConfig(clientID), ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0), // a failed handshake shows as the client's error
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, hex.EncodeToString(r.TLS.PeerCertificates[0].AuthorityKeyId))
		})}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	hc := &http.Client{Timeout: 5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: cliSrc.ClientConfig(server), DisableKeepAlives: true}}
	ctx, cancel := context.WithCancel(context.Background())
	m := &mtlsTraffic{cancel: cancel, done: make(chan struct{}), requests: map[string]int{}, issuers: map[string]bool{}}
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
func (m *mtlsTraffic) request(hc *http.Client, url string) error {
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

// phase starts counting requests under a new step, after making sure the
// previous step saw some.
func (m *mtlsTraffic) phase(name string) {
	for {
		m.mu.Lock()
		n, cur := m.requests[m.current], m.current
		if n >= 5 || cur == "" {
			m.current = name
			m.mu.Unlock()
			return
		}
		m.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
}

// stop ends the traffic and fails t if any request failed.
func (m *mtlsTraffic) stop(t *testing.T) {
	t.Helper()
	m.cancel()
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		t.Fatalf("an mTLS request failed during the rotation: %v (requests by step: %v)", m.err, m.requests)
	}
	t.Logf("mTLS requests by step, all successful: %v", m.requests)
}

// saw reports whether both sides presented a certificate from the issuer
// with key ID id.
func (m *mtlsTraffic) saw(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.issuers["client:"+id] && m.issuers["server:"+id]
}

// agentFiles reads an agent's directory through ..data: the leaf with its
// chain, and the bundle's roots.
func agentFiles(t *testing.T, dir string) ([]*x509.Certificate, []*x509.Certificate) {
	t.Helper()
	f, _, err := client.ReadFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := rotor.ParseCertificates(f.Cert)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := rotor.ParseCertificates(f.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	return certs, roots
}

// chainsTo reports whether a leaf, through the chain after it, chains to
// root.
func chainsTo(certs []*x509.Certificate, root *x509.Certificate) bool {
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root)
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err == nil
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	e2etest.ReplaceFile(t, to, readFileBytes(t, from))
}

// keyID is the subject key ID of the issuer init made in dir.
func keyID(t *testing.T, dir string) string {
	return hex.EncodeToString(readCerts(t, filepath.Join(dir, issuer.IssuerCertFile))[0].SubjectKeyId)
}
