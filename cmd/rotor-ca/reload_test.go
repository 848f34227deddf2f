package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/internal/e2etest"
)

// reloadPKI is three CAs made by init: a and a2 share a root, x has its
// own; live.conf and bundle.pem are what the CA under test is pointed at.
type reloadPKI struct {
	a, a2, x     string
	live, bundle string
}

func newReloadPKI(t *testing.T) reloadPKI {
	t.Helper()
	dir := t.TempDir()
	p := reloadPKI{a: filepath.Join(dir, "a"), a2: filepath.Join(dir, "a2"), x: filepath.Join(dir, "x"),
		live: filepath.Join(dir, "live.conf"), bundle: filepath.Join(dir, "bundle.pem")}
	initCA(t, nil, p.a)
	initCA(t, nil, p.a2, "--root-cert", filepath.Join(p.a, rootCertFile), "--root-key", filepath.Join(p.a, rootKeyFile))
	initCA(t, nil, p.x)
	replaceFile(t, p.live, p.read(t, p.a, issuerConfigFile))
	replaceFile(t, p.bundle, p.read(t, p.a, bundleFile))
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

func (p reloadPKI) read(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// keyID is the subject key ID of the issuer init made in dir.
func keyID(t *testing.T, dir string) string {
	return hex.EncodeToString(readCerts(t, filepath.Join(dir, issuerCertFile))[0].SubjectKeyId)
}

// TestReloadOnSIGHUP drives issuer and bundle reloads of the real binary
// with SIGHUP while clients keep asking for certificates: good
// configurations are swapped in, bad ones refused with an ERROR line while
// the current issuer keeps serving, and no request fails throughout.
func TestReloadOnSIGHUP(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; skipped with -short")
	}
	t.Parallel()
	p := newReloadPKI(t)
	ca, cl, token := p.serve(t, "0")
	rootA := readCerts(t, filepath.Join(p.a, rootCertFile))[0]
	currentIssuer := func() string {
		got, err := issue(t.Context(), cl, token)
		if err != nil {
			t.Fatalf("issue: %v", err)
		}
		return hex.EncodeToString(got.Chain[0].SubjectKeyId)
	}

	// Load: every certificate must arrive and chain, through the chain it
	// came with, to root A, whichever issuer signed it.
	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg       sync.WaitGroup
		issued   atomic.Int64
		failOnce sync.Once
		failure  error
	)
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				got, err := issue(ctx, cl, token)
				if err == nil {
					err = verifyIssued(got, rootA)
				}
				if err != nil && ctx.Err() == nil {
					failOnce.Do(func() { failure = err })
					return
				}
				issued.Add(1)
			}
		})
	}

	conf := func(dir string) func() { return func() { replaceFile(t, p.live, p.read(t, dir, issuerConfigFile)) } }
	bundle := func(dirs ...string) func() {
		return func() {
			var b []byte
			for _, d := range dirs {
				b = append(b, p.read(t, d, rootCertFile)...)
			}
			replaceFile(t, p.bundle, b)
		}
	}
	text := func(s string) func() { return func() { replaceFile(t, p.live, []byte(s)) } }
	tests := []struct {
		name   string
		apply  func()
		result string
		want   string // the CA whose issuer must be serving afterwards
		roots  float64
	}{
		{"ok/new-issuer-same-root", conf(p.a2), "ok", p.a2, 1},
		{"ok/unchanged", func() {}, "unchanged", p.a2, 1},
		{"fail/key-mismatch", text(fmt.Sprintf("issuer-cert=%s\nsigner=file\nissuer-key=%s\n",
			filepath.Join(p.a, issuerCertFile), filepath.Join(p.a2, issuerKeyFile))), "refused", p.a2, 1},
		{"fail/unreadable-certificate", text(fmt.Sprintf("issuer-cert=%s\nsigner=file\nissuer-key=%s\n",
			filepath.Join(p.a2, "missing.crt"), filepath.Join(p.a2, issuerKeyFile))), "refused", p.a2, 1},
		{"fail/unknown-setting", text("issuer-crt=" + filepath.Join(p.a2, issuerCertFile) + "\n"), "refused", p.a2, 1},
		{"fail/issuer-of-another-root", conf(p.x), "refused", p.a2, 1},
		{"ok/bundle-with-a-second-root", func() { conf(p.a2)(); bundle(p.a, p.x)() }, "ok", p.a2, 2},
		{"fail/bundle-without-the-issuers-root", bundle(p.x), "refused", p.a2, 2},
		{"ok/back-to-the-first-issuer", func() { conf(p.a)(); bundle(p.a)() }, "ok", p.a, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, errorsBefore := ca.reloads(t, tt.result), ca.logLevels(t)["ERROR"]
			tt.apply()
			ca.hup(t)
			if got := ca.reloads(t, tt.result); got != before+1 {
				t.Fatalf("reloads with result %s: %v, want %v", tt.result, got, before+1)
			}
			wantErrors := errorsBefore
			if tt.result == "refused" {
				wantErrors++
			}
			if got := ca.logLevels(t)["ERROR"]; got != wantErrors {
				t.Errorf("%d ERROR lines, want %d", got, wantErrors)
			}
			if got, want := currentIssuer(), keyID(t, tt.want); got != want {
				t.Errorf("issuing with %s, want %s", got, want)
			}
			if got := ca.metric(t, "rotor_bundle_roots"); got != tt.roots {
				t.Errorf("rotor_bundle_roots = %v, want %v", got, tt.roots)
			}
		})
	}
	cancel()
	wg.Wait()
	if failure != nil {
		t.Fatalf("a request failed during the reloads: %v", failure)
	}
	if issued.Load() < int64(len(tests)) {
		t.Errorf("only %d certificates issued under load", issued.Load())
	}
	t.Logf("%d certificates issued across %d reloads, none failed", issued.Load(), len(tests))
}

// TestReloadOnFileChange: without a signal, a changed issuer config is
// picked up by polling; a bad one is refused once, not at every poll, and
// its fix is picked up in turn.
func TestReloadOnFileChange(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; skipped with -short")
	}
	t.Parallel()
	p := newReloadPKI(t)
	ca, cl, token := p.serve(t, "100ms")
	issuerIs := func(dir string) bool {
		got, err := issue(t.Context(), cl, token)
		return err == nil && hex.EncodeToString(got.Chain[0].SubjectKeyId) == keyID(t, dir)
	}

	replaceFile(t, p.live, p.read(t, p.a2, issuerConfigFile))
	e2etest.WaitFor(t, "the new issuer", 30*time.Second, func() bool { return issuerIs(p.a2) })

	replaceFile(t, p.live, []byte("signer=nonsense\n"))
	e2etest.WaitFor(t, "the refusal", 30*time.Second, func() bool { return ca.reloads(t, "refused") == 1 })
	// Ten more polls see the same bad file: no new attempt, no new line.
	time.Sleep(time.Second)
	if n, errs := ca.reloads(t, "refused"), ca.logLevels(t)["ERROR"]; n != 1 || errs != 1 {
		t.Errorf("the same bad file gave %v refusals and %d ERROR lines, want 1 each", n, errs)
	}
	if !issuerIs(p.a2) {
		t.Error("the refused configuration changed the issuer")
	}

	replaceFile(t, p.live, p.read(t, p.a, issuerConfigFile))
	e2etest.WaitFor(t, "the fixed configuration", 30*time.Second, func() bool { return issuerIs(p.a) })
	if n := ca.reloads(t, "ok"); n != 2 {
		t.Errorf("%v successful reloads, want 2", n)
	}
}
