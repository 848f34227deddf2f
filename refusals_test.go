package rotor_test

import (
	"context"
	"crypto"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/testpki"
)

// memAudit keeps what the CA records, for tests of the CA's own decisions
// (the stores' side has its own tests on real databases).
type memAudit struct {
	mu        sync.Mutex
	issuances []*rotor.Issuance
	refusals  []*rotor.Refusal
	summaries []*rotor.RefusalSummary
}

func (m *memAudit) RecordIssuance(_ context.Context, i *rotor.Issuance) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.issuances = append(m.issuances, i)
	return nil
}

func (m *memAudit) RecordRefusal(_ context.Context, r *rotor.Refusal) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refusals = append(m.refusals, r)
	return nil
}

func (m *memAudit) RecordRefusalSummary(_ context.Context, s *rotor.RefusalSummary) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.summaries = append(m.summaries, s)
	return nil
}

func (m *memAudit) counts() (int, int, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.issuances), len(m.refusals), len(m.summaries)
}

// tokenAuth accepts one bearer token as webapp.
type tokenAuth string

func (a tokenAuth) Authenticate(_ context.Context, c rotor.Credentials) (rotor.Caller, error) {
	if c.BearerToken != string(a) {
		return rotor.Caller{}, rotor.Errorf(rotor.EUnauthenticated, "unknown token")
	}
	return rotor.Caller{Identity: webapp, Authenticator: "token", Subject: "test"}, nil
}

func newTestCA(t testing.TB, edit func(*rotor.CAConfig)) (*rotor.CA, *memAudit) {
	t.Helper()
	audit := &memAudit{}
	cfg := rotor.CAConfig{Policy: testPolicy(), Trust: rotor.NewTrustHolder(testpki.New(t, testpki.Options{}).Trust),
		Authenticator: tokenAuth("good"), Audit: audit}
	if edit != nil {
		edit(&cfg)
	}
	ca, err := rotor.NewCA(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return ca, audit
}

// TestRefusalBudget: an unauthenticated source gets its budget of rows,
// then one summary for the rest of the interval, written when the interval
// ends; an authenticated caller's refusals are always rows; a new interval
// starts a new budget. Time is the bubble's.
func TestRefusalBudget(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ca, audit := newTestCA(t, func(c *rotor.CAConfig) {
			c.RefusalBudget = rotor.RefusalBudget{Rows: 5, Interval: time.Minute}
		})
		ctx := context.Background()
		bad := rotor.IssueRequest{Credentials: rotor.Credentials{BearerToken: "bad", RemoteAddr: "127.0.0.2:1234"}}
		for range 1000 {
			if _, _, err := ca.Issue(ctx, bad); rotor.ErrorCodeOf(err) != rotor.EUnauthenticated {
				t.Fatalf("bad token: %v", err)
			}
		}
		other := bad
		other.Credentials.RemoteAddr = "127.0.0.3:99"
		ca.Issue(ctx, other)
		good := rotor.IssueRequest{CSR: []byte("garbage"), Credentials: rotor.Credentials{BearerToken: "good", RemoteAddr: "127.0.0.2:1"}}
		for range 10 {
			ca.Issue(ctx, good) // bad-csr, an authenticated caller's
		}
		if _, refusals, summaries := audit.counts(); refusals != 5+1+10 || summaries != 0 {
			t.Fatalf("during the interval: %d refusal rows and %d summaries, want 16 and 0", refusals, summaries)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if _, refusals, summaries := audit.counts(); refusals != 16 || summaries != 1 {
			t.Fatalf("after the interval: %d rows and %d summaries, want 16 and 1", refusals, summaries)
		}
		if s := audit.summaries[0]; s.Source != "127.0.0.2" || s.Count != 995 || s.Reasons[rotor.EUnauthenticated] != 995 {
			t.Errorf("summary %+v, want 995 unauthenticated from 127.0.0.2", s)
		}
		ca.Issue(ctx, bad) // a new interval, a new budget
		if _, refusals, _ := audit.counts(); refusals != 17 {
			t.Errorf("a new interval's first refusal: %d rows, want 17", refusals)
		}
		for range 10 {
			ca.Issue(ctx, bad)
		}
		ca.Close() // shutdown commits the pending summary at once
		if _, _, summaries := audit.counts(); summaries != 2 || audit.summaries[1].Count != 6 {
			t.Errorf("Close: %d summaries, want 2 (the last counting 6)", summaries)
		}
	})
}

// TestSourceLimiter: failed authentications from one source use up its
// bucket, then it is refused before any authenticator runs, with the wait
// in RetryAfter; another source, and good credentials before the bucket
// is empty, are unaffected.
func TestSourceLimiter(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	ca, _ := newTestCA(t, func(c *rotor.CAConfig) {
		c.SourceLimiter = &rotor.Limiter{Rate: 1, Burst: 3, Now: func() time.Time { return now }}
	})
	auth := func(token, addr string) error {
		_, err := ca.Authenticate(context.Background(), rotor.Credentials{BearerToken: token, RemoteAddr: addr})
		return err
	}
	for range 3 {
		if code := rotor.ErrorCodeOf(auth("bad", "127.0.0.2:1")); code != rotor.EUnauthenticated {
			t.Fatalf("within the bucket: %s", code)
		}
	}
	err := auth("good", "127.0.0.2:2")
	if rotor.ErrorCodeOf(err) != rotor.ERateLimited || rotor.RetryAfterOf(err) != time.Second {
		t.Fatalf("past the bucket: %v (retry after %v), want rate-limited, 1s", err, rotor.RetryAfterOf(err))
	}
	if err := auth("good", "127.0.0.1:2"); err != nil {
		t.Fatalf("another source: %v", err)
	}
	for range 5 {
		if err := auth("good", "127.0.0.4:2"); err != nil {
			t.Fatalf("good credentials use no tokens: %v", err)
		}
	}
}

// slowSigner tells signing when a signature starts and waits for release
// before making it: a backend that takes its time.
type slowSigner struct {
	key              crypto.Signer
	signing, release chan struct{}
}

func (s slowSigner) Public() crypto.PublicKey { return s.key.Public() }

func (s slowSigner) Sign(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	select {
	case s.signing <- struct{}{}:
	default:
	}
	<-s.release
	return rotor.LocalSigner{Key: s.key}.Sign(ctx, digest, opts)
}

// TestMaxInFlight: past the cap, an issuance is refused at once with
// EOverloaded with a Retry-After instead of waiting.
func TestMaxInFlight(t *testing.T) {
	t.Parallel()
	signing, release := make(chan struct{}, 2), make(chan struct{})
	ca, audit := newTestCA(t, func(c *rotor.CAConfig) {
		c.MaxInFlight = 2
		pki := testpki.New(t, testpki.Options{Signer: func(k crypto.Signer) rotor.Signer { return slowSigner{k, signing, release} }})
		c.Trust = rotor.NewTrustHolder(pki.Trust)
	})
	csr := testpki.CSR(t, testpki.Key(t, "ecdsa-p256"), nil)
	req := rotor.IssueRequest{CSR: csr, Credentials: rotor.Credentials{BearerToken: "good"}}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if _, _, err := ca.Issue(context.Background(), req); err != nil {
				t.Errorf("within the cap: %v", err)
			}
		})
	}
	<-signing // both are signing, so both hold a slot
	<-signing
	_, _, err := ca.Issue(context.Background(), req)
	if rotor.ErrorCodeOf(err) != rotor.EOverloaded || rotor.RetryAfterOf(err) <= 0 {
		t.Errorf("past the cap: %v, want overloaded with a Retry-After", err)
	}
	close(release)
	wg.Wait()
	if _, _, err := ca.Issue(context.Background(), req); err != nil {
		t.Errorf("once the slots are free: %v", err)
	}
	if issued, refused, _ := audit.counts(); issued != 3 || refused != 1 {
		t.Errorf("%d issued, %d refused; want 3 and the overload refused", issued, refused)
	}
}

// TestRenewAfterPaced: a CA places each renew_after by its schedule, within
// MaxPace of the lifetime before RenewalTime and not all at one moment;
// one with UnpacedRenewals gives RenewalTime itself.
func TestRenewAfterPaced(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		unpaced bool
	}{
		{"ok/paced", false},
		{"ok/unpaced", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ca, _ := newTestCA(t, func(c *rotor.CAConfig) { c.UnpacedRenewals = tt.unpaced })
			csr := testpki.CSR(t, testpki.Key(t, "ecdsa-p256"), nil)
			places := map[time.Duration]bool{}
			for range 20 {
				iss, _, err := ca.Issue(context.Background(), rotor.IssueRequest{CSR: csr, Credentials: rotor.Credentials{BearerToken: "good"}})
				if err != nil {
					t.Fatal(err)
				}
				life := iss.NotAfter.Sub(iss.IssuedAt)
				early := rotor.RenewalTime(iss.IssuedAt, iss.NotAfter).Sub(iss.RenewAfter())
				if early < -time.Second || early > time.Duration(rotor.MaxPace*float64(life))+time.Second {
					t.Fatalf("renew_after %v before RenewalTime, outside the spread of %v", early, life)
				}
				places[early.Round(time.Second)] = true
			}
			if tt.unpaced && (len(places) != 1 || !places[0]) {
				t.Errorf("unpaced renew_after moved from RenewalTime: %v", places)
			}
			if !tt.unpaced && len(places) < 10 {
				t.Errorf("20 certificates from a calm CA renew at only %d moments", len(places))
			}
		})
	}
}
