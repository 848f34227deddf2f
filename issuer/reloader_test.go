package issuer

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/e2etest"
)

// reloadPKI is three CAs: a and a2 share a root, x has its own; live.conf
// and bundle.pem are what the reloader under test is pointed at.
type reloadPKI struct {
	a, a2, x     string
	live, bundle string
}

func newReloadPKI(t testing.TB) reloadPKI {
	t.Helper()
	dir := t.TempDir()
	p := reloadPKI{a: filepath.Join(dir, "a"), a2: filepath.Join(dir, "a2"), x: filepath.Join(dir, "x"),
		live: filepath.Join(dir, "live.conf"), bundle: filepath.Join(dir, "bundle.pem")}
	mustCreate(t, p.a, nil)
	mustCreate(t, p.a2, func(pl *Plan) {
		pl.RootCert, pl.RootKey = filepath.Join(p.a, RootCertFile), filepath.Join(p.a, RootKeyFile)
	})
	mustCreate(t, p.x, nil)
	p.use(t, p.a)
	e2etest.ReplaceFile(t, p.bundle, read(t, p.a, BundleFile))
	return p
}

// use points live.conf at the issuer made in dir.
func (p reloadPKI) use(t testing.TB, dir string) {
	e2etest.ReplaceFile(t, p.live, read(t, dir, ConfigFile))
}

// bundleOf points bundle.pem at the roots of the CAs in dirs.
func (p reloadPKI) bundleOf(t testing.TB, dirs ...string) {
	var b []byte
	for _, d := range dirs {
		b = append(b, read(t, d, RootCertFile)...)
	}
	e2etest.ReplaceFile(t, p.bundle, b)
}

// reloader serves p with its own registry and log.
func (p reloadPKI) reloader(t testing.TB, interval time.Duration) (*Reloader, *prometheus.Registry, *e2etest.JSONLog) {
	t.Helper()
	logs := &e2etest.JSONLog{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	reg := prometheus.NewRegistry()
	r, err := NewReloader(context.Background(), ReloaderConfig{Interval: interval, Registerer: reg, Log: log,
		Loader: &Loader{Base: Defaults(), ConfigFile: p.live, BundleFile: p.bundle, Log: log}})
	if err != nil {
		t.Fatal(err)
	}
	return r, reg, logs
}

func reloads(r *Reloader, result string) float64 {
	return testutil.ToFloat64(r.reloads.WithLabelValues(result))
}

// keyID is the subject key ID of the issuer made in dir.
func keyID(t testing.TB, dir string) string {
	return hex.EncodeToString(readCerts(t, filepath.Join(dir, IssuerCertFile))[0].SubjectKeyId)
}

// TestReload drives reloads while clients keep issuing: good
// configurations are swapped in, bad ones refused with an ERROR line while
// the current issuer keeps serving, and no issuance fails throughout.
func TestReload(t *testing.T) {
	t.Parallel()
	p := newReloadPKI(t)
	r, _, logs := p.reloader(t, 0)
	defer r.Close()
	ca := newTestCA(t, r)
	bundleA, err := rotor.NewBundle(readCerts(t, filepath.Join(p.a, RootCertFile)))
	if err != nil {
		t.Fatal(err)
	}
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
				leaf, issuer, err := ca.issue(ctx, t)
				if err == nil {
					err = verifyLeaf(leaf, issuer, bundleA)
				}
				if err != nil && ctx.Err() == nil {
					failOnce.Do(func() { failure = err })
					return
				}
				issued.Add(1)
			}
		})
	}
	text := func(s string) func() { return func() { e2etest.ReplaceFile(t, p.live, []byte(s)) } }
	tests := []struct {
		name   string
		apply  func()
		result string
		want   string // the CA whose issuer must be serving afterwards
		roots  int
	}{
		{"ok/new-issuer-same-root", func() { p.use(t, p.a2) }, "ok", p.a2, 1},
		{"ok/unchanged", func() {}, "unchanged", p.a2, 1},
		{"fail/key-mismatch", text(fmt.Sprintf("issuer-cert=%s\nsigner=file\nissuer-key=%s\n",
			filepath.Join(p.a, IssuerCertFile), filepath.Join(p.a2, IssuerKeyFile))), "refused", p.a2, 1},
		{"fail/unreadable-certificate", text(fmt.Sprintf("issuer-cert=%s\nsigner=file\nissuer-key=%s\n",
			filepath.Join(p.a2, "missing.crt"), filepath.Join(p.a2, IssuerKeyFile))), "refused", p.a2, 1},
		{"fail/unknown-setting", text("issuer-crt=" + filepath.Join(p.a2, IssuerCertFile) + "\n"), "refused", p.a2, 1},
		{"fail/issuer-of-another-root", func() { p.use(t, p.x) }, "refused", p.a2, 1},
		{"ok/bundle-with-a-second-root", func() { p.use(t, p.a2); p.bundleOf(t, p.a, p.x) }, "ok", p.a2, 2},
		{"fail/bundle-without-the-issuers-root", func() { p.bundleOf(t, p.x) }, "refused", p.a2, 2},
		{"ok/back-to-the-first-issuer", func() { p.use(t, p.a); p.bundleOf(t, p.a) }, "ok", p.a, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, errorsBefore := reloads(r, tt.result), logs.Count("ERROR")
			tt.apply()
			r.Reload(ctx, "test")
			if got := reloads(r, tt.result); got != before+1 {
				t.Fatalf("reloads with result %s: %v, want %v", tt.result, got, before+1)
			}
			wantErrors := errorsBefore
			if tt.result == "refused" {
				wantErrors++
			}
			if got := logs.Count("ERROR"); got != wantErrors {
				t.Errorf("%d ERROR lines, want %d", got, wantErrors)
			}
			_, issuer, err := ca.issue(ctx, t)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := issuer.KeyID, keyID(t, tt.want); got != want {
				t.Errorf("issuing with %s, want %s", got, want)
			}
			if got := testutil.ToFloat64(r.roots); got != float64(tt.roots) {
				t.Errorf("rotor_bundle_roots = %v, want %v", got, tt.roots)
			}
			checkTrustSeries(t, r)
		})
	}
	cancel()
	wg.Wait()
	if failure != nil {
		t.Fatalf("an issuance failed during the reloads: %v", failure)
	}
	if issued.Load() < int64(len(tests)) {
		t.Errorf("only %d certificates issued under load", issued.Load())
	}
	t.Logf("%d certificates issued across %d reloads, none failed", issued.Load(), len(tests))
}

// TestReloadOnFileChange: without a signal, a changed issuer config is
// picked up by polling; a bad one is refused once, not at every poll, and
// its fix is picked up in turn. Time is the bubble's: no test waits.
func TestReloadOnFileChange(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := newReloadPKI(t)
		r, _, logs := p.reloader(t, 100*time.Millisecond)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); r.Run(ctx, nil) }()
		poll := func(d time.Duration) { time.Sleep(d); synctest.Wait() }
		issuerIs := func(dir string) bool { return r.Trust().Issuer.KeyID == keyID(t, dir) }

		p.use(t, p.a2)
		poll(150 * time.Millisecond)
		if !issuerIs(p.a2) {
			t.Fatal("the changed configuration was not picked up")
		}
		e2etest.ReplaceFile(t, p.live, []byte("signer=nonsense\n"))
		poll(150 * time.Millisecond)
		if reloads(r, "refused") != 1 {
			t.Fatal("the bad configuration was not refused")
		}
		// Ten more polls see the same bad file: no new attempt, no new line.
		poll(time.Second)
		if n, errs := reloads(r, "refused"), logs.Count("ERROR"); n != 1 || errs != 1 {
			t.Errorf("the same bad file gave %v refusals and %d ERROR lines, want 1 each", n, errs)
		}
		if !issuerIs(p.a2) {
			t.Error("the refused configuration changed the issuer")
		}
		p.use(t, p.a)
		poll(150 * time.Millisecond)
		if !issuerIs(p.a) || reloads(r, "ok") != 2 {
			t.Errorf("the fixed configuration: issuer a %v, %v successful reloads, want 2", issuerIs(p.a), reloads(r, "ok"))
		}
		// The signer of a2 was replaced: it stays open for the grace
		// period, for requests that took it before the swap, then closes.
		if len(r.retired) != 2 || !r.retired[1].timer.Stop() {
			t.Fatalf("%d retired signers, the last already closed", len(r.retired))
		}
		r.retired[1].timer.Reset(time.Minute)
		time.Sleep(time.Minute + time.Second)
		if r.retired[0].timer.Stop() || r.retired[1].timer.Stop() {
			t.Error("a retired signer is still open after its grace period")
		}
		cancel()
		<-done
		r.Close()
	})
}

// failingBundles refuses to record while fail is set.
type failingBundles struct {
	fail     atomic.Bool
	recorded atomic.Int32
}

func (f *failingBundles) RecordBundle(context.Context, *rotor.Bundle, time.Time) error {
	if f.fail.Load() {
		return rotor.Errorf(rotor.EStoreUnavailable, "store down")
	}
	f.recorded.Add(1)
	return nil
}

// TestRecordBundle: each bundle served is recorded once; one the store
// cannot take now is asked again, with one ERROR line for it.
func TestRecordBundle(t *testing.T) {
	t.Parallel()
	p := newReloadPKI(t)
	r, _, logs := p.reloader(t, 0)
	defer r.Close()
	b := &failingBundles{}
	r.cfg.Bundles = b
	b.fail.Store(true)
	ctx := context.Background()
	r.record(ctx)
	r.record(ctx)
	if b.recorded.Load() != 0 || logs.Count("ERROR") != 1 {
		t.Fatalf("while failing: %d recorded, %d ERROR lines; want 0 and 1", b.recorded.Load(), logs.Count("ERROR"))
	}
	b.fail.Store(false)
	r.record(ctx)
	r.record(ctx)
	if b.recorded.Load() != 1 {
		t.Fatalf("%d records of one bundle, want 1", b.recorded.Load())
	}
	p.bundleOf(t, p.a, p.x)
	r.Reload(ctx, "test")
	if b.recorded.Load() != 2 {
		t.Fatalf("the new bundle was not recorded: %d records", b.recorded.Load())
	}
}

func read(t testing.TB, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkTrustSeries checks the expiry series against the trust serving:
// the issuer's, and one per root in the bundle, none for a root gone.
func checkTrustSeries(t *testing.T, r *Reloader) {
	t.Helper()
	trust := r.Trust()
	if got, want := testutil.ToFloat64(r.notAfter), float64(trust.Issuer.Certificate.NotAfter.Unix()); got != want {
		t.Errorf("rotor_issuer_expiration_timestamp_seconds = %v, want %v", got, want)
	}
	if got := testutil.CollectAndCount(r.rootsExpiry); got != len(trust.Bundle.Roots) {
		t.Errorf("%d rotor_root_expiration_timestamp_seconds series, want one per root (%d)", got, len(trust.Bundle.Roots))
	}
	for _, root := range trust.Bundle.Roots {
		g := r.rootsExpiry.WithLabelValues(rotor.Fingerprint(root.Raw), root.Subject.String())
		if got := testutil.ToFloat64(g); got != float64(root.NotAfter.Unix()) {
			t.Errorf("root %s expiry series = %v, want %v", root.Subject, got, root.NotAfter.Unix())
		}
	}
}
