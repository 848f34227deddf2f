package authn

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/testenv"
)

// seedToken stores a new static token for shopWeb in st and returns it.
func seedToken(t testing.TB, st rotor.TokenStore) string {
	t.Helper()
	token, stored, err := rotor.NewStaticToken(nil, shopWeb, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateToken(context.Background(), stored, testAction); err != nil {
		t.Fatal(err)
	}
	return token
}

// newTokenStore returns a SQLite store holding one static token for
// shopWeb, and that token.
func newTokenStore(t testing.TB) (rotor.TokenStore, string) {
	t.Helper()
	st := openSQLite(t)
	return st, seedToken(t, st)
}

func TestStaticTokens(t *testing.T) {
	t.Parallel()
	backends := map[string]func(t *testing.T) rotor.Store{
		"sqlite":   func(t *testing.T) rotor.Store { return openSQLite(t) },
		"postgres": func(t *testing.T) rotor.Store { return openStore(t, testenv.PostgresURL(t)) },
	}
	for backend, open := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			st := open(t)
			testStaticTokens(t, NewStaticTokens(st, nil, nil), seedToken(t, st))
			testTokenLifecycle(t, st)
		})
	}
}

// testTokenLifecycle: admin tokens give admin callers; expired and revoked
// tokens fail at once.
func testTokenLifecycle(t *testing.T, st rotor.Store) {
	now := t0
	clock := func() time.Time { return now }
	a := NewStaticTokens(st, clock, nil)
	admin, adminRec, err := rotor.NewAdminToken(nil, "alice", time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateToken(context.Background(), adminRec, testAction); err != nil {
		t.Fatal(err)
	}
	caller, err := a.Authenticate(context.Background(), rotor.Credentials{BearerToken: admin})
	if err != nil || !caller.Admin || caller.Name != "alice" || caller.Identity != (rotor.Identity{}) {
		t.Fatalf("admin token: caller %+v, %v; want admin alice without identity", caller, err)
	}
	workload := seedToken(t, st)
	if _, err := st.RevokeToken(context.Background(), (rotor.StaticToken{Hash: rotor.HashToken(workload)}).Subject(),
		testAction); err != nil {
		t.Fatal(err)
	}
	now = t0.Add(time.Hour) // the admin token's expiry
	for name, token := range map[string]string{"revoked": workload, "expired": admin} {
		_, err := a.Authenticate(context.Background(), rotor.Credentials{BearerToken: token})
		if rotor.ErrorCodeOf(err) != rotor.EUnauthenticated || !strings.Contains(err.Error(), name) {
			t.Errorf("%s token: %v, want unauthenticated saying %s", name, err, name)
		}
	}
}

func testStaticTokens(t *testing.T, a *StaticTokens, token string) {
	unknown, _, err := rotor.NewStaticToken(nil, shopWeb, t0)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cred rotor.Credentials
		want rotor.ErrorCode
	}{
		{name: "ok/known-token", cred: rotor.Credentials{BearerToken: token}},
		{name: "fail/unknown-token", cred: rotor.Credentials{BearerToken: unknown}, want: rotor.EUnauthenticated},
		{name: "fail/truncated-token", cred: rotor.Credentials{BearerToken: token[:len(token)-1]}, want: rotor.EUnauthenticated},
		{name: "fail/prefix-only", cred: rotor.Credentials{BearerToken: rotor.TokenPrefix}, want: rotor.EUnauthenticated},
		{name: "no-creds/empty", cred: rotor.Credentials{}, want: errNoCreds},
		{name: "no-creds/jwt-shaped", cred: rotor.Credentials{BearerToken: "eyJh.eyJz.c2ln"}, want: errNoCreds},
		{name: "no-creds/prefix-not-at-start", cred: rotor.Credentials{BearerToken: "x" + token}, want: errNoCreds},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			caller, err := a.Authenticate(context.Background(), tt.cred)
			checkResult(t, caller, err, tt.want, NameToken, shopWeb)
			if err == nil && (strings.Contains(caller.Subject, token[len(rotor.TokenPrefix):]) ||
				caller.Subject != (rotor.StaticToken{Hash: rotor.HashToken(token)}).Subject()) {
				t.Errorf("subject = %q, want the hash prefix and not the token", caller.Subject)
			}
		})
	}
}

func TestStaticTokensStoreDown(t *testing.T) {
	t.Parallel()
	token, _, err := rotor.NewStaticToken(nil, shopWeb, t0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewStaticTokens(closedStore(t), nil, nil).Authenticate(context.Background(), rotor.Credentials{BearerToken: token})
	checkResult(t, rotor.Caller{}, err, rotor.EStoreUnavailable, NameToken, shopWeb)
}
