package authn

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
)

// countingStore counts the lookups that reach the store.
type countingStore struct {
	rotor.Store
	lookups atomic.Int64
}

func (c *countingStore) LookupToken(ctx context.Context, hash []byte) (rotor.StaticToken, error) {
	c.lookups.Add(1)
	return c.Store.LookupToken(ctx, hash)
}

func (c *countingStore) TokenBySubject(ctx context.Context, subject string) (rotor.StaticToken, error) {
	c.lookups.Add(1)
	return c.Store.TokenBySubject(ctx, subject)
}

// TestTokenCache: through a chain with Fresh, a token's lookups reach the
// store once per Fresh; a revocation on the store (another replica) fails
// the token once the cached answer is older than Fresh, never later; a
// token that was unknown is not remembered as unknown; expiry is exact.
func TestTokenCache(t *testing.T) {
	t.Parallel()
	const fresh = time.Second
	clk := newClock()
	st := &countingStore{Store: openSQLite(t)}
	chain, _, err := NewChain(ChainConfig{Tokens: st, Records: st, Now: clk.Now, Fresh: fresh})
	if err != nil {
		t.Fatal(err)
	}
	auth := func(token string) error {
		_, err := chain.Authenticate(context.Background(), rotor.Credentials{BearerToken: token})
		return err
	}
	late, lateRec, err := rotor.NewStaticToken(nil, shopWeb, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := auth(late); rotor.ErrorCodeOf(err) != rotor.EUnauthenticated {
		t.Fatalf("unknown token: %v", err)
	}
	if err := st.CreateToken(context.Background(), lateRec, testAction); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		advance time.Duration
		revoke  bool
		want    rotor.ErrorCode // "" for accepted
		lookups int64           // total reaching the store
	}{
		{name: "ok/created-after-a-miss", want: "", lookups: 2},
		{name: "ok/cached", advance: fresh / 2, lookups: 2},
		{name: "ok/revoked-but-cached", revoke: true, advance: fresh / 4, lookups: 2},
		{name: "fail/revoked-after-fresh", advance: fresh / 4, want: rotor.EUnauthenticated, lookups: 3},
		{name: "fail/revoked-cached", advance: fresh / 2, want: rotor.EUnauthenticated, lookups: 3},
	}
	for _, s := range steps {
		clk.Advance(s.advance)
		if s.revoke {
			if _, err := st.RevokeToken(context.Background(), lateRec.Subject(), testAction); err != nil {
				t.Fatal(err)
			}
		}
		err := auth(late)
		if rotor.ErrorCodeOf(err) != s.want || (s.want == "" && err != nil) {
			t.Fatalf("%s: %v, want %q", s.name, err, s.want)
		}
		if n := st.lookups.Load(); n != s.lookups {
			t.Fatalf("%s: %d lookups reached the store, want %d", s.name, n, s.lookups)
		}
	}
}

// TestTokenCacheExpiry: a cached token still expires at its ExpiresAt, to
// the second, however fresh its cache entry.
func TestTokenCacheExpiry(t *testing.T) {
	t.Parallel()
	clk := newClock()
	st := openSQLite(t)
	admin, rec, err := rotor.NewAdminToken(nil, "alice", 2*time.Second, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateToken(context.Background(), rec, testAction); err != nil {
		t.Fatal(err)
	}
	a := NewStaticTokens(NewTokenCache(st, time.Hour, clk.Now), clk.Now, nil)
	for _, s := range []struct {
		advance time.Duration
		ok      bool
	}{{0, true}, {time.Second, true}, {time.Second, false}} {
		clk.Advance(s.advance)
		if _, err := a.Authenticate(context.Background(), rotor.Credentials{BearerToken: admin}); (err == nil) != s.ok {
			t.Fatalf("at +%v: %v, want ok %v", clk.Now().Sub(t0), err, s.ok)
		}
	}
}

// TestLineageTokenCache: an mTLS renewal's lineage token, looked up by
// subject, reaches the store once per Fresh, and a deleted token is seen
// once its cached answer is older than Fresh.
func TestLineageTokenCache(t *testing.T) {
	t.Parallel()
	clk := newClock()
	st := &countingStore{Store: openSQLite(t)}
	token := seedToken(t, st)
	subject := (rotor.StaticToken{Hash: rotor.HashToken(token)}).Subject()
	recs := cachedRecords{CertificateRecords: st, bySubject: newFreshTokens(time.Second, clk.Now)}
	for _, s := range []struct {
		advance time.Duration
		revoke  bool
		revoked bool
		lookups int64
	}{{0, false, false, 1}, {500 * time.Millisecond, true, false, 1}, {600 * time.Millisecond, false, true, 2}} {
		clk.Advance(s.advance)
		if s.revoke {
			if _, err := st.RevokeToken(context.Background(), subject, testAction); err != nil {
				t.Fatal(err)
			}
		}
		tok, err := recs.TokenBySubject(context.Background(), subject)
		if err != nil || tok.RevokedAt.IsZero() == s.revoked || st.lookups.Load() != s.lookups {
			t.Fatalf("at +%v: revoked at %v, %v, %d lookups; want revoked %v and %d lookups",
				clk.Now().Sub(t0), tok.RevokedAt, err, st.lookups.Load(), s.revoked, s.lookups)
		}
	}
}
