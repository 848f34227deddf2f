package store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/store"
)

// testStore is the behaviour every backend must share.
func testStore(t *testing.T, b backend) {
	t.Run("issuance/round-trip", func(t *testing.T) { testIssuanceRoundTrip(t, b) })
	t.Run("issuance/who-got-what-when", func(t *testing.T) { testWhoGotWhat(t, b) })
	t.Run("issuance/invalid", func(t *testing.T) { testInvalidIssuance(t, b) })
	t.Run("issuance/concurrent", func(t *testing.T) { testConcurrent(t, b) })
	t.Run("issuance/ctx-cancelled", func(t *testing.T) { testCancelled(t, b) })
	t.Run("refusal", func(t *testing.T) { testRefusals(t, b) })
	t.Run("refusal-summary", func(t *testing.T) { testRefusalSummaries(t, b) })
	t.Run("token", func(t *testing.T) { testTokens(t, b) })
	t.Run("roots", func(t *testing.T) { testRoots(t, b) })
	t.Run("revocations", func(t *testing.T) { testRevocations(t, b) })
	t.Run("acme", func(t *testing.T) { testACME(t, b) })
	t.Run("migrate", func(t *testing.T) { testMigrate(t, b) })
	t.Run("closed", func(t *testing.T) { testClosed(t, b) })
}

func testIssuanceRoundTrip(t *testing.T, b backend) {
	s, _ := b.open(t, store.Options{})
	want := newIssuance(t, rotor.Identity{Namespace: "payments", ServiceAccount: "api.v2"}, time.Now())
	want.BundleFingerprint = "sha256:" + hex.EncodeToString(make([]byte, 32))
	plain := newIssuance(t, rotor.Identity{Namespace: "payments", ServiceAccount: "api.v2"}, time.Now())
	plain.BundleFingerprint = ""
	for _, iss := range []*rotor.Issuance{want, plain} {
		if err := s.RecordIssuance(t.Context(), iss); err != nil {
			t.Fatalf("RecordIssuance: %v", err)
		}
	}
	tests := []struct {
		name   string
		serial string
		want   *rotor.Issuance
		code   rotor.ErrorCode
	}{
		{"ok/every-field", want.Serial, want, ""},
		{"ok/no-bundle-fingerprint", plain.Serial, plain, ""},
		{"ok/uppercase-serial", strings.ToUpper(want.Serial), want, ""},
		{"fail/unknown-serial", "0123456789abcdef", nil, rotor.ENotFound},
		{"fail/empty-serial", "", nil, rotor.ENotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Issuance(t.Context(), tt.serial)
			if code := rotor.ErrorCodeOf(err); code != tt.code {
				t.Fatalf("Issuance(%q) error %v, want code %q", tt.serial, err, tt.code)
			}
			if tt.want == nil {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Issuance read back\n got %+v\nwant %+v", got, tt.want)
			}
			if _, err := x509.ParseCertificate(got.Certificate); err != nil {
				t.Fatalf("certificate read back does not parse: %v", err)
			}
		})
	}
}

// testInvalidIssuance checks that a record the schema would refuse is
// refused alone, before it can fail a whole group commit.
func testInvalidIssuance(t *testing.T, b backend) {
	s, url := b.open(t, store.Options{})
	for _, serial := range []string{"", "ABCDEF", "ab:cd", "xyz"} {
		t.Run("fail/serial-"+serial, func(t *testing.T) {
			iss := newIssuance(t, rotor.Identity{Namespace: "ns", ServiceAccount: "sa"}, time.Now())
			iss.Serial = serial
			if err := s.RecordIssuance(t.Context(), iss); rotor.ErrorCodeOf(err) != rotor.EInternal {
				t.Fatalf("RecordIssuance with serial %q: %v, want code %q", serial, err, rotor.EInternal)
			}
		})
	}
	if n := b.count(t, url, `SELECT count(*) FROM issuances`); n != 0 {
		t.Fatalf("%d rows stored, want none", n)
	}
}

// testWhoGotWhat answers the operator's question with plain SQL.
func testWhoGotWhat(t *testing.T, b backend) {
	s, url := b.open(t, store.Options{})
	day := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	api := rotor.Identity{Namespace: "payments", ServiceAccount: "api"}
	other := rotor.Identity{Namespace: "payments", ServiceAccount: "worker"}
	for i, rec := range []struct {
		id rotor.Identity
		at time.Time
	}{{api, day.Add(time.Hour)}, {api, day.Add(3 * time.Hour)}, {api, day.Add(-time.Hour)}, {other, day.Add(2 * time.Hour)}} {
		if err := s.RecordIssuance(t.Context(), newIssuance(t, rec.id, rec.at)); err != nil {
			t.Fatalf("RecordIssuance #%d: %v", i, err)
		}
	}
	tests := []struct {
		name  string
		query string
		want  int64
	}{
		{"ok/identity-on-day", fmt.Sprintf(`SELECT count(*) FROM issuances WHERE namespace = 'payments'
			AND service_account = 'api' AND issued_at >= %s AND issued_at < %s`,
			b.timeLit(day), b.timeLit(day.Add(24*time.Hour))), 2},
		{"ok/namespace-since", fmt.Sprintf(`SELECT count(*) FROM issuances WHERE namespace = 'payments'
			AND issued_at >= %s`, b.timeLit(day.Add(90*time.Minute))), 2},
		{"ok/still-valid-at", fmt.Sprintf(`SELECT count(*) FROM issuances WHERE not_after > %s`,
			b.timeLit(day.Add(25*time.Hour))), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := b.count(t, url, tt.query); got != tt.want {
				t.Fatalf("%s\n= %d, want %d", tt.query, got, tt.want)
			}
		})
	}
}

// testConcurrent records from many goroutines at once, as a loaded CA does,
// and counts the rows with plain SQL afterwards.
func testConcurrent(t *testing.T, b backend) {
	s, url := b.open(t, store.Options{})
	const callers, each = 64, 8
	var wg sync.WaitGroup
	errs := make(chan error, callers*each)
	for c := range callers {
		id := rotor.Identity{Namespace: "load", ServiceAccount: fmt.Sprintf("sa-%d", c)}
		wg.Go(func() {
			for range each {
				if err := s.RecordIssuance(t.Context(), newIssuance(t, id, time.Now())); err != nil {
					errs <- err
				}
				r := &rotor.Refusal{Time: time.Now(), Reason: rotor.ERateLimited, Detail: "slow down", Identity: id}
				if err := s.RecordRefusal(t.Context(), r); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("record: %v", err)
	}
	if got := b.count(t, url, `SELECT count(*) FROM issuances WHERE namespace = 'load'`); got != callers*each {
		t.Errorf("issuances: %d rows, want %d", got, callers*each)
	}
	if got := b.count(t, url, `SELECT count(DISTINCT service_account) FROM issuances`); got != callers {
		t.Errorf("issuances: %d identities, want %d", got, callers)
	}
	if got := b.count(t, url, `SELECT count(*) FROM refusals WHERE reason = 'rate-limited'`); got != callers*each {
		t.Errorf("refusals: %d rows, want %d", got, callers*each)
	}
}

func testCancelled(t *testing.T, b backend) {
	s, _ := b.open(t, store.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	id := rotor.Identity{Namespace: "ns", ServiceAccount: "sa"}
	for name, record := range map[string]func() error{
		"issuance": func() error { return s.RecordIssuance(ctx, newIssuance(t, id, time.Now())) },
		"refusal":  func() error { return s.RecordRefusal(ctx, &rotor.Refusal{Time: time.Now(), Reason: rotor.EBadCSR}) },
	} {
		err := record()
		if code := rotor.ErrorCodeOf(err); code != rotor.EStoreUnavailable || !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled ctx: %v (code %q), want %q wrapping context.Canceled", name, err, code, rotor.EStoreUnavailable)
		}
	}
	// The store is still fine for everyone else.
	if err := s.RecordIssuance(t.Context(), newIssuance(t, id, time.Now())); err != nil {
		t.Fatalf("RecordIssuance after a cancelled caller: %v", err)
	}
}

func testRefusals(t *testing.T, b backend) {
	s, url := b.open(t, store.Options{})
	at := time.Date(2026, 11, 27, 10, 30, 15, 123456789, time.UTC)
	tests := []struct {
		name  string
		r     rotor.Refusal
		query string
	}{
		{"ok/unauthenticated-caller", rotor.Refusal{Time: at, Reason: rotor.EUnauthenticated,
			Detail: "unknown or revoked static token", RemoteAddr: "10.0.0.7:51234"},
			`reason = 'unauthenticated' AND detail = 'unknown or revoked static token' AND namespace = ''
			AND service_account = '' AND authenticator = '' AND remote_addr = '10.0.0.7:51234'`},
		{"ok/known-caller", rotor.Refusal{Time: at, Reason: rotor.EForbidden, Detail: "SAN for another identity",
			Identity: rotor.Identity{Namespace: "web", ServiceAccount: "frontend"}, Authenticator: "jwt",
			RemoteAddr: "[fd00::1]:443"},
			`reason = 'identity-not-allowed' AND detail = 'SAN for another identity' AND namespace = 'web'
			AND service_account = 'frontend' AND authenticator = 'jwt' AND remote_addr = '[fd00::1]:443'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.RecordRefusal(t.Context(), &tt.r); err != nil {
				t.Fatalf("RecordRefusal: %v", err)
			}
			q := fmt.Sprintf(`SELECT count(*) FROM refusals WHERE %s AND time >= %s AND time < %s`, tt.query,
				b.timeLit(at.Truncate(time.Second)), b.timeLit(at.Truncate(time.Second).Add(time.Second)))
			if got := b.count(t, url, q); got != 1 {
				t.Fatalf("%s\n= %d, want 1", q, got)
			}
		})
	}
}

// testRefusalSummaries: a summary is stored as one row, and the
// refusal_counts view adds it, by reason, to the single refusals.
func testRefusalSummaries(t *testing.T, b backend) {
	s, url := b.open(t, store.Options{})
	at := time.Date(2026, 11, 27, 10, 30, 0, 0, time.UTC)
	if err := s.RecordRefusal(t.Context(), &rotor.Refusal{Time: at, Reason: rotor.EUnauthenticated,
		Detail: "unknown token", RemoteAddr: "127.0.0.2:40000"}); err != nil {
		t.Fatal(err)
	}
	sum := &rotor.RefusalSummary{Source: "127.0.0.2", First: at.Add(time.Second), Last: at.Add(59 * time.Second),
		Count: 1000, Reasons: map[rotor.ErrorCode]int{rotor.EUnauthenticated: 990, rotor.ERateLimited: 10}}
	if err := s.RecordRefusalSummary(t.Context(), sum); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []*rotor.RefusalSummary{{Source: "x", Count: 0, Reasons: map[rotor.ErrorCode]int{}}} {
		if err := s.RecordRefusalSummary(t.Context(), bad); err == nil {
			t.Error("an empty summary was stored")
		}
	}
	checks := []struct {
		query string
		want  int64
	}{
		{"SELECT count(*) FROM refusal_summaries WHERE source = '127.0.0.2' AND count = 1000", 1},
		{"SELECT sum(count) FROM refusal_counts WHERE source = '127.0.0.2'", 1001},
		{"SELECT sum(count) FROM refusal_counts WHERE reason = 'unauthenticated'", 991},
		{"SELECT sum(count) FROM refusal_counts WHERE reason = 'rate-limited'", 10},
		{"SELECT count(*) FROM refusal_counts WHERE last_time >= " + b.timeLit(at.Add(59*time.Second)), 2},
	}
	for _, c := range checks {
		if got := b.count(t, url, c.query); got != c.want {
			t.Errorf("%s = %d, want %d", c.query, got, c.want)
		}
	}
}

func testTokens(t *testing.T, b backend) {
	s, _ := b.open(t, store.Options{})
	id := rotor.Identity{Namespace: "ci", ServiceAccount: "deployer"}
	created := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	token, tok, err := rotor.NewStaticToken(rand.Reader, id, created)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateToken(t.Context(), tok, testAction); err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	t.Run("ok/lookup", func(t *testing.T) {
		got, err := s.LookupToken(t.Context(), rotor.HashToken(token))
		if err != nil {
			t.Fatalf("LookupToken: %v", err)
		}
		if !reflect.DeepEqual(got, tok) {
			t.Fatalf("LookupToken = %+v, want %+v", got, tok)
		}
	})
	tests := []struct {
		name string
		do   func() error
		code rotor.ErrorCode
	}{
		{"fail/unknown", func() error {
			_, err := s.LookupToken(t.Context(), rotor.HashToken(token+"x"))
			return err
		}, rotor.ENotFound},
		{"fail/duplicate", func() error { return s.CreateToken(t.Context(), tok, testAction) }, rotor.EInvalid},
		{"fail/short-hash", func() error {
			return s.CreateToken(t.Context(), rotor.StaticToken{Hash: []byte{1}, Identity: id, CreatedAt: created}, testAction)
		}, rotor.EInvalid},
		{"fail/invalid-identity", func() error {
			bad := rotor.StaticToken{Hash: bytes.Repeat([]byte{1}, 32), Identity: rotor.Identity{Namespace: "A"}}
			return s.CreateToken(t.Context(), bad, testAction)
		}, rotor.EInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); rotor.ErrorCodeOf(err) != tt.code {
				t.Fatalf("error %v, want code %q", err, tt.code)
			}
		})
	}
}

// testMigrate runs migrations twice in a row and twice at once, as replicas
// starting together do.
func testMigrate(t *testing.T, b backend) {
	url := b.fresh(t)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { errs[i] = store.Migrate(t.Context(), url) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Migrate #%d: %v", i, err)
		}
	}
	if err := store.Migrate(t.Context(), url); err != nil {
		t.Fatalf("Migrate on a current schema: %v", err)
	}
	s, err := store.Open(t.Context(), url, store.Options{})
	if err != nil {
		t.Fatalf("Open after Migrate: %v", err)
	}
	defer s.Close()
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	t.Run("fail/open-unmigrated", func(t *testing.T) {
		_, err := store.Open(t.Context(), b.fresh(t), store.Options{})
		if code := rotor.ErrorCodeOf(err); code != rotor.EStoreUnavailable {
			t.Fatalf("Open on an empty database: %v, want code %q", err, rotor.EStoreUnavailable)
		}
	})
}

func testClosed(t *testing.T, b backend) {
	s, _ := b.open(t, store.Options{})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	id := rotor.Identity{Namespace: "ns", ServiceAccount: "sa"}
	_, tok, _ := rotor.NewStaticToken(rand.Reader, id, time.Now())
	for name, call := range map[string]func() error{
		"RecordIssuance": func() error { return s.RecordIssuance(t.Context(), newIssuance(t, id, time.Now())) },
		"RecordRefusal":  func() error { return s.RecordRefusal(t.Context(), &rotor.Refusal{Time: time.Now()}) },
		"Issuance": func() error {
			_, err := s.Issuance(t.Context(), "ab")
			return err
		},
		"CreateToken": func() error { return s.CreateToken(t.Context(), tok, testAction) },
		"LookupToken": func() error {
			_, err := s.LookupToken(t.Context(), tok.Hash)
			return err
		},
		"Ping": func() error { return s.Ping(t.Context()) },
		"RecordBundle": func() error {
			return s.RecordBundle(t.Context(), newBundle(t, newRoot(t, "root")), time.Now())
		},
		"RootStatus": func() error {
			_, err := s.RootStatus(t.Context(), strings.Repeat("a", 64))
			return err
		},
		"Revocations": func() error {
			_, err := s.Revocations(t.Context(), "0a1b", time.Now())
			return err
		},
		"RevocationHead": func() error {
			_, err := s.RevocationHead(t.Context())
			return err
		},
	} {
		if code := rotor.ErrorCodeOf(call()); code != rotor.EStoreUnavailable {
			t.Errorf("%s on a closed store: code %q, want %q", name, code, rotor.EStoreUnavailable)
		}
	}
}
