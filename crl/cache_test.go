package crl_test

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/crl"
	"github.com/rotor-dev/rotor/internal/testenv"
	"github.com/rotor-dev/rotor/internal/testpki"
	"github.com/rotor-dev/rotor/store"
)

var backends = []struct {
	name string
	url  func(testing.TB) string
}{
	{"sqlite", func(t testing.TB) string { return "sqlite://" + filepath.Join(t.TempDir(), "rotor.db") }},
	{"postgres", testenv.PostgresURL},
}

// fixture is a real store with its metrics, a real issuer, and a clock the
// test moves.
type fixture struct {
	st    *store.Store
	reg   *prometheus.Registry
	pki   *testpki.PKI
	now   atomic.Pointer[time.Time]
	cache *crl.Cache
}

func newFixture(t *testing.T, url string, start time.Time) *fixture {
	t.Helper()
	f := &fixture{reg: prometheus.NewRegistry(), pki: testpki.New(t, testpki.Options{Now: start})}
	var err error
	f.st, err = store.Open(t.Context(), url, store.Options{Migrate: true, Registerer: f.reg,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.st.Close() })
	f.now.Store(&start)
	f.cache, err = crl.New(crl.Config{Store: f.st, Validity: time.Hour, Logger: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return *f.now.Load() }})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) advance(d time.Duration) {
	t := f.now.Load().Add(d)
	f.now.Store(&t)
}

// issued records the issuance of a certificate by iss that expires at
// notAfter, and returns its serial.
func (f *fixture) issued(t *testing.T, iss *rotor.Issuer, notAfter time.Time) string {
	t.Helper()
	b := make([]byte, 20)
	_, _ = io.ReadFull(rand.Reader, b)
	b[0] = b[0]&0x7f | 0x40
	serial := hex.EncodeToString(b)
	err := f.st.RecordIssuance(t.Context(), &rotor.Issuance{Serial: serial, Identity: rotor.Identity{Namespace: "shop",
		ServiceAccount: "web"}, NotBefore: notAfter.Add(-time.Hour), NotAfter: notAfter, IssuedAt: notAfter.Add(-time.Hour),
		IssuerKeyID: iss.KeyID, Authenticator: "token"})
	if err != nil {
		t.Fatal(err)
	}
	return serial
}

func (f *fixture) revoke(t *testing.T, serial string) {
	t.Helper()
	now := *f.now.Load()
	err := f.st.RevokeCertificate(t.Context(), rotor.Revocation{Serial: serial, Time: now, Reason: rotor.ReasonKeyCompromise,
		Actor: "test", Comment: "test"}, rotor.AdminAction{Time: now, Actor: rotor.Actor{Name: "test", Kind: rotor.ActorCLI}})
	if err != nil {
		t.Fatal(err)
	}
}

// lists is how often the cache has read a list of revocations from the
// store, as the store's own metrics count them.
func (f *fixture) lists(t *testing.T) uint64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "rotor_store_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "op" && l.GetValue() == "revocations" {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

// TestCache walks one issuer's CRL through revocations, checks, windows and
// an expiry, on both stores: when the cache asks the store, when it signs,
// and what each CRL says.
func TestCache(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			// A minute into a window of a CRL valid for an hour (a window
			// every 30 minutes).
			start := time.Now().UTC().Truncate(30 * time.Minute).Add(time.Minute)
			f := newFixture(t, be.url(t), start)
			iss := f.pki.Issuer
			other := testpki.New(t, testpki.Options{Name: "Other", Now: start}).Issuer
			expiring := f.issued(t, iss, start.Add(44*time.Minute)) // expires in the second window
			live := f.issued(t, iss, start.Add(24*time.Hour))
			foreign := f.issued(t, other, start.Add(24*time.Hour))

			steps := []struct {
				name    string
				advance time.Duration
				revoke  string
				signed  bool     // a new CRL, else the last one again
				lists   int      // lists read from the store
				want    []string // serials listed
			}{
				{"ok/first-signs", 0, "", true, 1, nil},
				{"ok/cached-without-asking", 500 * time.Millisecond, "", false, 0, nil},
				{"ok/revocation-unseen-within-the-interval", 0, expiring, false, 0, nil},
				{"ok/revocation-seen-after-the-interval", 600 * time.Millisecond, "", true, 1, []string{expiring}},
				{"ok/no-revocation-no-list", 2 * time.Second, "", false, 0, []string{expiring}},
				{"ok/other-issuers-revocation-lists-and-keeps", 2 * time.Second, foreign, false, 1, []string{expiring}},
				{"ok/second-revocation", 2 * time.Second, live, true, 1, []string{expiring, live}},
				{"ok/next-window-signs-anew", 30 * time.Minute, "", true, 1, []string{expiring, live}},
				// Expired at minute 45: still on the window from minute 61,
				// the first CRL past its expiry, gone from minute 91.
				{"ok/expired-stays-one-window", 30 * time.Minute, "", true, 1, []string{expiring, live}},
				{"ok/expired-drops-off", 30 * time.Minute, "", true, 1, []string{live}},
			}
			var last *rotor.CRL
			for _, s := range steps {
				t.Run(s.name, func(t *testing.T) {
					f.advance(s.advance)
					if s.revoke != "" {
						f.revoke(t, s.revoke)
					}
					lists := f.lists(t)
					got, err := f.cache.Get(t.Context(), iss)
					if err != nil {
						t.Fatal(err)
					}
					if n := f.lists(t) - lists; n != uint64(s.lists) {
						t.Errorf("%d lists read, want %d", n, s.lists)
					}
					if signed := got != last; signed != s.signed {
						t.Fatalf("signed a new CRL: %v, want %v", signed, s.signed)
					}
					if s.signed && last != nil && got.Number.Cmp(last.Number) <= 0 {
						t.Errorf("number %x after %x", got.Number, last.Number)
					}
					checkCRL(t, got, iss, *f.now.Load(), s.want)
					last = got
				})
			}
		})
	}
}

// checkCRL parses c and holds it to its issuer, the window of now and the
// serials it should list.
func checkCRL(t *testing.T, c *rotor.CRL, iss *rotor.Issuer, now time.Time, want []string) {
	t.Helper()
	rl, err := x509.ParseRevocationList(c.DER)
	if err != nil {
		t.Fatal(err)
	}
	if err := rl.CheckSignatureFrom(iss.Certificate); err != nil {
		t.Fatalf("CRL does not verify: %v", err)
	}
	w := rotor.NewCRLWindow(now, time.Hour)
	var got []string
	for _, e := range rl.RevokedCertificateEntries {
		got = append(got, e.SerialNumber.Text(16))
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) || rl.Number.Cmp(c.Number) != 0 || c.IssuerKeyID != iss.KeyID ||
		!bytes.Equal(rl.RawIssuer, iss.Certificate.RawSubject) ||
		rl.ThisUpdate.Before(w.Start) || rl.ThisUpdate.After(now) || !rl.NextUpdate.Equal(w.NextUpdate) {
		t.Fatalf("CRL %x lists %v from %v to %v; want %v, window %v to %v", rl.Number, got, rl.ThisUpdate, rl.NextUpdate,
			want, w.Start, w.NextUpdate)
	}
}

// TestCacheConcurrent: requests arriving together wait for one check and
// one signature, and all get that CRL.
func TestCacheConcurrent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, backends[0].url(t), time.Now())
	f.revoke(t, f.issued(t, f.pki.Issuer, time.Now().Add(time.Hour)))
	crls := make([]*rotor.CRL, 32)
	var wg sync.WaitGroup
	for i := range crls {
		wg.Go(func() {
			c, err := f.cache.Get(t.Context(), f.pki.Issuer)
			if err != nil {
				t.Error(err)
			}
			crls[i] = c
		})
	}
	wg.Wait()
	for i, c := range crls {
		if c != crls[0] {
			t.Fatalf("request %d got another CRL than request 0", i)
		}
	}
	if n := f.lists(t); n != 1 {
		t.Fatalf("%d lists read for 32 requests at once, want 1", n)
	}
}

// TestCacheStoreDown: once the check interval has passed, a cached CRL is
// not served without asking the store, since it may lack revocations other
// replicas made.
func TestCacheStoreDown(t *testing.T) {
	t.Parallel()
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			f := newFixture(t, be.url(t), time.Now())
			if _, err := f.cache.Get(t.Context(), f.pki.Issuer); err != nil {
				t.Fatal(err)
			}
			if err := f.st.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := f.cache.Get(t.Context(), f.pki.Issuer); err != nil {
				t.Fatalf("within the check interval: %v, want the cached CRL", err)
			}
			f.advance(crl.DefaultCheckInterval)
			if c, err := f.cache.Get(t.Context(), f.pki.Issuer); rotor.ErrorCodeOf(err) != rotor.EStoreUnavailable {
				t.Fatalf("store closed: %v, %v; want code %q", c, err, rotor.EStoreUnavailable)
			}
		})
	}
}

// TestCacheNewIssuer: a new issuer gets its own CRL, signed by its key;
// its key certified again under another name gets a CRL in that name; and
// going back to the first signs the first's again.
func TestCacheNewIssuer(t *testing.T) {
	t.Parallel()
	now := time.Now()
	f := newFixture(t, backends[0].url(t), now)
	next := testpki.New(t, testpki.Options{Name: "Next", Now: now}).Issuer
	renamedCert, err := rotor.CreateCACertificate(t.Context(), rotor.CAParams{Name: "Renamed", Lifetime: time.Hour, Now: now},
		f.pki.IssuerKey.Public(), f.pki.Root, rotor.LocalSigner{Key: f.pki.RootKey})
	if err != nil {
		t.Fatal(err)
	}
	renamed, err := rotor.NewIssuer(renamedCert, nil, rotor.LocalSigner{Key: f.pki.IssuerKey})
	if err != nil || renamed.KeyID != f.pki.Issuer.KeyID {
		t.Fatalf("the same key certified again: key ID %s, %v", renamed.KeyID, err)
	}
	for i, iss := range []*rotor.Issuer{f.pki.Issuer, next, f.pki.Issuer, renamed} {
		c, err := f.cache.Get(t.Context(), iss)
		if err != nil {
			t.Fatal(err)
		}
		checkCRL(t, c, iss, now, nil)
		if n := f.lists(t); n != uint64(i+1) {
			t.Fatalf("after %d issuers: %d lists read", i+1, n)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	st, err := store.Open(t.Context(), backends[0].url(t), store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for name, cfg := range map[string]crl.Config{
		"fail/no-store":          {},
		"fail/validity-1s":       {Store: st, Validity: time.Second},
		"fail/negative-interval": {Store: st, CheckInterval: -time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := crl.New(cfg); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
}
