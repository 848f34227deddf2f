package main

import (
	"encoding/hex"
	"path/filepath"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/internal/e2etest"
	"github.com/rotor-dev/rotor/issuer"
)

// reloadPKI is two CAs made by init under one root; live.conf and
// bundle.pem are what the CA under test is pointed at.
type reloadPKI struct {
	a, a2        string
	live, bundle string
}

func newReloadPKI(t *testing.T) reloadPKI {
	t.Helper()
	dir := t.TempDir()
	p := reloadPKI{a: filepath.Join(dir, "a"), a2: filepath.Join(dir, "a2"),
		live: filepath.Join(dir, "live.conf"), bundle: filepath.Join(dir, "bundle.pem")}
	initCA(t, nil, p.a)
	initCA(t, nil, p.a2, "--root-cert", filepath.Join(p.a, issuer.RootCertFile), "--root-key", filepath.Join(p.a, issuer.RootKeyFile))
	e2etest.ReplaceFile(t, p.live, readFileBytes(t, filepath.Join(p.a, issuer.ConfigFile)))
	e2etest.ReplaceFile(t, p.bundle, readFileBytes(t, filepath.Join(p.a, issuer.BundleFile)))
	return p
}

// serve starts a CA on live.conf and bundle.pem, checking its files every
// interval, and returns it with a client and a token to issue with.
func (p reloadPKI) serve(t *testing.T, interval string) (*caRun, *client.Client, string) {
	t.Helper()
	data := filepath.Join(filepath.Dir(p.live), "data")
	ca := serveCA(t, nil, p.bundle, "--data-dir", data, "--issuer-config", p.live, "--trust-bundle", p.bundle,
		"--reload-interval", interval)
	return ca, ca.client(t), createToken(t, data, "default", "reload")
}

// issuedBy reports whether the CA issues with the issuer init made in dir.
func issuedBy(t *testing.T, cl *client.Client, token, dir string) bool {
	t.Helper()
	got, err := issue(t.Context(), cl, token)
	if err != nil {
		t.Fatalf("issue: %v", err)
	}
	return hex.EncodeToString(got.Chain[0].SubjectKeyId) == keyID(t, dir)
}

// TestReloadOnSIGHUP: the binary reloads on SIGHUP, swapping in a good
// configuration and refusing a bad one with an ERROR line while the
// current issuer keeps serving. (issuer.TestReload drives every kind of
// reload under load in-process.)
func TestReloadOnSIGHUP(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; skipped with -short")
	}
	t.Parallel()
	p := newReloadPKI(t)
	ca, cl, token := p.serve(t, "0")
	e2etest.ReplaceFile(t, p.live, readFileBytes(t, filepath.Join(p.a2, issuer.ConfigFile)))
	ca.hup(t)
	if ca.reloads(t, "ok") != 1 || !issuedBy(t, cl, token, p.a2) {
		t.Fatal("SIGHUP did not swap in the new issuer")
	}
	e2etest.ReplaceFile(t, p.live, []byte("signer=nonsense\n"))
	ca.hup(t)
	if ca.reloads(t, "refused") != 1 || len(e2etest.Events(t, ca.Log, issuer.EventReloadRefused)) != 1 || ca.logLevels(t)["ERROR"] != 1 {
		t.Errorf("the bad configuration: %v refusals, %d ERROR lines, want 1 each", ca.reloads(t, "refused"), ca.logLevels(t)["ERROR"])
	}
	if !issuedBy(t, cl, token, p.a2) {
		t.Error("the refused configuration changed the issuer")
	}
}

// TestReloadOnFileChange: without a signal, a changed issuer config is
// picked up by polling.
func TestReloadOnFileChange(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; skipped with -short")
	}
	t.Parallel()
	p := newReloadPKI(t)
	ca, cl, token := p.serve(t, "100ms")
	e2etest.ReplaceFile(t, p.live, readFileBytes(t, filepath.Join(p.a2, issuer.ConfigFile)))
	e2etest.WaitFor(t, "the new issuer", 30*time.Second, func() bool { return ca.reloads(t, "ok") == 1 })
	if !issuedBy(t, cl, token, p.a2) {
		t.Error("the reload did not swap in the new issuer")
	}
}
