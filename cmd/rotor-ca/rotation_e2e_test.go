package main

import (
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
	traffic.Phase("1: root A only")
	e2etest.ReplaceFile(t, bundle, append(readFileBytes(t, filepath.Join(caA, issuer.RootCertFile)), readFileBytes(t, filepath.Join(caB, issuer.RootCertFile))...))
	ca.hup(t)
	traffic.Phase("2: bundle A+B")

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
	traffic.Phase("3: issuer B")
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
	traffic.Phase("4: bundle B only")
	for _, dir := range dirs {
		e2etest.WaitFor(t, "a bundle without A in "+dir, 30*time.Second, func() bool {
			_, roots := agentFiles(t, dir)
			return len(roots) == 1 && roots[0].Equal(rootB)
		})
	}
	traffic.Phase("done")
	traffic.Stop(t)
	if !traffic.Saw(keyID(t, caA)) || !traffic.Saw(keyID(t, caB)) {
		t.Errorf("handshakes saw issuers %v; want A's and B's on both sides", traffic.Issuers())
	}
}

// startMTLSTraffic is a Go mTLS client and server on the agents' files,
// built on client.TLSSource, handshaking anew for every request.
func startMTLSTraffic(t *testing.T, serverDir, clientDir string, server, clientID rotor.Identity) *e2etest.MTLSTraffic {
	t.Helper()
	srvSrc, err := client.NewTLSSource(serverDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	cliSrc, err := client.NewTLSSource(clientDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e2etest.StartMTLSTraffic(t, srvSrc.ServerConfig(clientID), cliSrc.ClientConfig(server), "")
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
