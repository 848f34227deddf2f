package main_test

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
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	spiffewl "github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/agent/workloadapi"
	"github.com/rotor-dev/rotor/internal/catest"
	"github.com/rotor-dev/rotor/internal/e2etest"
	"github.com/rotor-dev/rotor/internal/testpki"
)

// TestWorkloadAPIRotations: two real rotor-agents serve the SPIFFE
// Workload API on their sockets (and write their files too) for a server
// and a client built with go-spiffe alone: workloadapi.X509Source and
// tlsconfig.MTLSServerConfig / MTLSClientConfig, each authorizing the
// other by SPIFFE ID, with a fresh handshake every few milliseconds. With
// two-second certificates they go through three rotations, then a root
// rotation from A to B in the steps of docs/root-rotation.md (bundle A+B,
// issuer B, bundle B), and not one request may fail: the streamed bundle
// holds both roots while it must.
func TestWorkloadAPIRotations(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test builds and runs rotor-agent; skipped with -short")
	}
	t.Parallel()
	agentBin := e2etest.Build(t, t.TempDir(), "./cmd/rotor-agent")[0]
	ca := catest.New(t, catest.Options{TTL: 2 * time.Second})
	work, err := os.MkdirTemp("", "wlapi") // short: a socket path is at most 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	rootFile := filepath.Join(work, "root.crt")
	if err := os.WriteFile(rootFile, ca.Bundle.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	td := spiffeid.RequireTrustDomainFromString(catest.TrustDomain)
	serverID, clientID := rotor.Identity{Namespace: "mesh", ServiceAccount: "server"}, rotor.Identity{Namespace: "mesh", ServiceAccount: "client"}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sources := map[rotor.Identity]*spiffewl.X509Source{}
	for _, id := range []rotor.Identity{serverID, clientID} {
		sock := filepath.Join(work, id.ServiceAccount+".sock")
		agentLog := filepath.Join(work, id.ServiceAccount+".log")
		p := e2etest.StartEnv(t, []string{"ROTOR_TOKEN=" + ca.Token(t, id)}, agentLog, agentBin,
			"--ca-url", ca.URL, "--ca-bundle", rootFile, "--out-dir", filepath.Join(work, id.ServiceAccount),
			"--workload-api-socket", sock, "--workload-api-socket-mode", "0660", "--log-format", "json")
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("rotor-agent %s log:\n%s", id, e2etest.ReadFile(t, agentLog))
			}
		})
		ev := p.WaitEvent(t, workloadapi.EventServing, 30*time.Second)
		if ev["socket"] != sock || ev["mode"] != "0660" {
			t.Errorf("%s: %s event %v", id, workloadapi.EventServing, ev)
		}
		if fi, err := os.Lstat(sock); err != nil || fi.Mode().Perm() != 0o660 {
			t.Errorf("%s: socket %v, %v; want mode 0660", id, fi.Mode(), err)
		}
		src, err := spiffewl.NewX509Source(ctx, spiffewl.WithClientOptions(spiffewl.WithAddr("unix://"+sock)))
		if err != nil {
			t.Fatalf("%s: X509Source: %v", id, err)
		}
		t.Cleanup(func() { src.Close() })
		sources[id] = src
	}
	traffic := startSPIFFETraffic(t, sources[serverID], sources[clientID],
		spiffeid.RequireFromURI(serverID.SPIFFEID(catest.TrustDomain)), spiffeid.RequireFromURI(clientID.SPIFFEID(catest.TrustDomain)))

	// Each source's leaf, and its bundle's roots.
	leaf := func(id rotor.Identity) *x509.Certificate {
		svid, err := sources[id].GetX509SVID()
		if err != nil {
			t.Fatal(err)
		}
		return svid.Certificates[0]
	}
	roots := func(id rotor.Identity) []*x509.Certificate {
		b, err := sources[id].GetX509BundleForTrustDomain(td)
		if err != nil {
			t.Fatal(err)
		}
		return b.X509Authorities()
	}
	// until waits until cond holds for both sides.
	until := func(what string, cond func(rotor.Identity) bool) {
		t.Helper()
		e2etest.WaitFor(t, what, 20*time.Second, func() bool { return cond(serverID) && cond(clientID) })
	}

	// Both sides are polled each time, so no serial goes unseen.
	seen := map[rotor.Identity]map[string]bool{serverID: {}, clientID: {}}
	e2etest.WaitFor(t, "three rotations on each side", 20*time.Second, func() bool {
		for id, s := range seen {
			s[leaf(id).SerialNumber.Text(16)] = true
		}
		return len(seen[serverID]) >= 4 && len(seen[clientID]) >= 4
	})

	b := testpki.New(t, testpki.Options{Name: "B"})
	traffic.phase("1: bundle A+B")
	ca.SetTrust(t, ca.Issuer, ca.Root, b.Root)
	until("bundle A+B on each side", func(id rotor.Identity) bool { return len(roots(id)) == 2 })
	traffic.phase("2: issuer B")
	ca.SetTrust(t, b.Issuer, ca.Root, b.Root)
	until("a certificate from issuer B on each side", func(id rotor.Identity) bool {
		return hex.EncodeToString(leaf(id).AuthorityKeyId) == b.Issuer.KeyID
	})
	traffic.phase("3: bundle B")
	ca.SetTrust(t, b.Issuer, b.Root)
	until("bundle B alone on each side", func(id rotor.Identity) bool {
		r := roots(id)
		return len(r) == 1 && r[0].Equal(b.Root)
	})
	traffic.phase("done")
	traffic.stop(t)
	if !traffic.saw(ca.Issuer.KeyID) || !traffic.saw(b.Issuer.KeyID) {
		t.Errorf("handshakes saw issuers %v; want A's and B's on both sides", traffic.issuers)
	}
}

// spiffeTraffic is a go-spiffe mTLS client and server, handshaking anew
// for every request.
type spiffeTraffic struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	err      error
	current  string         // the step under way
	requests map[string]int // by step
	issuers  map[string]bool
}

func startSPIFFETraffic(t *testing.T, srvSrc, cliSrc *spiffewl.X509Source, serverID, clientID spiffeid.ID) *spiffeTraffic {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{TLSConfig: tlsconfig.MTLSServerConfig(srvSrc, srvSrc, tlsconfig.AuthorizeID(clientID)),
		ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0), // a failed handshake shows as the client's error
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, hex.EncodeToString(r.TLS.PeerCertificates[0].AuthorityKeyId))
		})}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: tlsconfig.MTLSClientConfig(cliSrc, cliSrc, tlsconfig.AuthorizeID(serverID)), DisableKeepAlives: true}}
	ctx, cancel := context.WithCancel(context.Background())
	m := &spiffeTraffic{cancel: cancel, done: make(chan struct{}), current: "0: root A", requests: map[string]int{},
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
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return m
}

// request makes one handshake and notes which issuers (by key ID) the two
// sides' certificates came from.
func (m *spiffeTraffic) request(hc *http.Client, url string) error {
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

// phase starts counting requests under a new step once the step before it
// saw some.
func (m *spiffeTraffic) phase(name string) {
	for {
		m.mu.Lock()
		if m.requests[m.current] >= 5 {
			m.current = name
			m.mu.Unlock()
			return
		}
		m.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
}

// stop ends the traffic and fails t if any request failed.
func (m *spiffeTraffic) stop(t *testing.T) {
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

// saw reports whether both sides presented a certificate from the issuer
// with key ID id.
func (m *spiffeTraffic) saw(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.issuers["client:"+id] && m.issuers["server:"+id]
}
