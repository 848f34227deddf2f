package authn

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/store"
)

const trustDomain = "cluster.local"

var (
	shopWeb = rotor.Identity{Namespace: "shop", ServiceAccount: "web"}
	t0      = time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
)

// clock is a settable time source, so tests move time instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// writeFile writes data to a fresh file in t's temp dir.
func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// serverCAFile writes the PEM certificate of an httptest TLS server, for
// clients that must verify it.
func serverCAFile(t testing.TB, srv *httptest.Server) string {
	t.Helper()
	return writeFile(t, "server-ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
}

// checkResult asserts an authentication outcome: want "" means accepted as
// wantID by authenticator name; errNoCreds means rotor.ErrNoCredentials.
func checkResult(t *testing.T, caller rotor.Caller, err error, want rotor.ErrorCode, name string, wantID rotor.Identity) {
	t.Helper()
	if want == errNoCreds {
		if !errors.Is(err, rotor.ErrNoCredentials) {
			t.Fatalf("err = %v, want ErrNoCredentials", err)
		}
		return
	}
	if errors.Is(err, rotor.ErrNoCredentials) {
		t.Fatalf("err = ErrNoCredentials, want code %q", want)
	}
	if code := rotor.ErrorCodeOf(err); code != want {
		t.Fatalf("code = %q (%v), want %q", code, err, want)
	}
	if want != "" {
		return
	}
	if caller.Identity != wantID || caller.Authenticator != name || caller.Subject == "" {
		t.Fatalf("caller = %+v, want %v by %s with a subject", caller, wantID, name)
	}
}

// errNoCreds marks cases expecting rotor.ErrNoCredentials in tables.
const errNoCreds rotor.ErrorCode = "no-credentials"

// openStore opens a real store by URL, migrated, closed when t ends.
func openStore(t testing.TB, url string) rotor.Store {
	t.Helper()
	st, err := store.Open(context.Background(), url, store.Options{Migrate: true})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// openSQLite opens a real SQLite store in a fresh file.
func openSQLite(t testing.TB) rotor.Store {
	t.Helper()
	return openStore(t, "sqlite://"+filepath.Join(t.TempDir(), "rotor.db"))
}

// closedStore is a real SQLite store that has been closed: every read
// fails as a store outage does.
func closedStore(t testing.TB) rotor.Store {
	t.Helper()
	st := openSQLite(t)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return st
}

// testAction is the admin action tests create tokens with.
var testAction = rotor.AdminAction{Time: time.Now(), Actor: rotor.Actor{Name: "cli:test", Kind: rotor.ActorCLI}}

// onRecord answers that every certificate is on record for shopWeb and
// not revoked: TestMTLS checks verification; TestMTLSRenewsWhatTheCAIssued
// checks records on a real store.
var onRecord = recordsAs{shopWeb}

type recordsAs struct{ id rotor.Identity }

func (r recordsAs) CertificateStatus(_ context.Context, serial string) (*rotor.CertificateStatus, error) {
	return &rotor.CertificateStatus{Issuance: &rotor.Issuance{Serial: serial, Identity: r.id, Credential: "jwt-subject"}}, nil
}

func (recordsAs) TokenBySubject(context.Context, string) (rotor.StaticToken, error) {
	return rotor.StaticToken{}, rotor.Errorf(rotor.ENotFound, "no tokens here")
}
