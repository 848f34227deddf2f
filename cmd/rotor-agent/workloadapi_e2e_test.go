package main_test

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"os"
	"path/filepath"
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
	serverSrc, clientSrc := sources[serverID], sources[clientID]
	traffic := e2etest.StartMTLSTraffic(t,
		tlsconfig.MTLSServerConfig(serverSrc, serverSrc, tlsconfig.AuthorizeID(spiffeid.RequireFromURI(clientID.SPIFFEID(catest.TrustDomain)))),
		tlsconfig.MTLSClientConfig(clientSrc, clientSrc, tlsconfig.AuthorizeID(spiffeid.RequireFromURI(serverID.SPIFFEID(catest.TrustDomain)))),
		"0: root A")

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
	traffic.Phase("1: bundle A+B")
	ca.SetTrust(t, ca.Issuer, ca.Root, b.Root)
	until("bundle A+B on each side", func(id rotor.Identity) bool { return len(roots(id)) == 2 })
	traffic.Phase("2: issuer B")
	ca.SetTrust(t, b.Issuer, ca.Root, b.Root)
	until("a certificate from issuer B on each side", func(id rotor.Identity) bool {
		return hex.EncodeToString(leaf(id).AuthorityKeyId) == b.Issuer.KeyID
	})
	traffic.Phase("3: bundle B")
	ca.SetTrust(t, b.Issuer, b.Root)
	until("bundle B alone on each side", func(id rotor.Identity) bool {
		r := roots(id)
		return len(r) == 1 && r[0].Equal(b.Root)
	})
	traffic.Phase("done")
	traffic.Stop(t)
	if !traffic.Saw(ca.Issuer.KeyID) || !traffic.Saw(b.Issuer.KeyID) {
		t.Errorf("handshakes saw issuers %v; want A's and B's on both sides", traffic.Issuers())
	}
}
