package acme_test

import (
	"context"
	"crypto/tls"
	"database/sql"
	"encoding/base64"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", to read the audit rows

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/acme"
	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/internal/testenv"
	"github.com/rotor-dev/rotor/internal/testpki"
	"github.com/rotor-dev/rotor/store"
)

const trustDomain = "cluster.local"

var webapp = rotor.Identity{Namespace: "default", ServiceAccount: "webapp"}

// backends are the real stores every ACME test runs on; Postgres skips
// (or fails in CI) when it is not there.
var backends = []struct {
	name string
	url  func(testing.TB) string
}{
	{"sqlite", func(t testing.TB) string { return "sqlite://" + filepath.Join(t.TempDir(), "rotor.db") }},
	{"postgres", testenv.PostgresURL},
}

// env is a whole CA over real TLS with ACME mounted: a real store, the
// core CA and ACME, the API handler and the ACME adapter.
type env struct {
	url      string // https://127.0.0.1:port
	storeURL string
	store    *store.Store
	pki      *testpki.PKI
	ca       *rotor.CA
	deny     *rotor.Denylist
	client   *http.Client // trusts the serving certificate
}

// newEnv starts a CA on storeURL; several envs on one Postgres URL are
// replicas sharing a store. pki, if set, is shared too.
func newEnv(t testing.TB, storeURL string, pki *testpki.PKI) *env {
	t.Helper()
	st, err := store.Open(context.Background(), storeURL, store.Options{Migrate: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if pki == nil {
		pki = testpki.New(t, testpki.Options{Name: "Rotor ACME Test"})
	}
	e := &env{storeURL: storeURL, store: st, pki: pki, deny: &rotor.Denylist{}}
	trust := rotor.NewTrustHolder(pki.Trust)
	logger := slog.New(slog.DiscardHandler)
	e.ca, err = rotor.NewCA(rotor.CAConfig{
		Policy: rotor.Policy{TrustDomain: trustDomain, DefaultTTL: 24 * time.Hour, MaxTTL: 24 * time.Hour, ClockSkew: time.Minute},
		Trust:  trust, Authenticator: rotor.Authenticators{}, Audit: st, Admin: st, Denylist: e.deny, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.ca.Close)
	ah, err := acme.New(acme.Config{ACME: rotor.ACME{CA: e.ca, Store: st}, Trust: trust, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	h, err := api.New(api.Config{CA: e.ca, Trust: trust, Certificates: st, Logger: logger, ACME: ah})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(h)
	ts.TLS = api.ServerTLSConfig(nil)
	ts.TLS.Certificates = []tls.Certificate{pki.ServingCert(t)}
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	e.url = ts.URL
	e.client = &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Bundle.Pool()}}}
	return e
}

// directory is the ACME directory URL.
func (e *env) directory() string { return e.url + "/acme/directory" }

// eab makes an EAB key for id as rotor-ca acme eab create does, and
// returns its key ID and HMAC key.
func (e *env) eab(t testing.TB, id rotor.Identity) (string, []byte) {
	t.Helper()
	k, err := rotor.NewEABKey(nil, id, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	a := rotor.AdminAction{Time: time.Now(), Actor: rotor.Actor{Name: "cli:test", Kind: rotor.ActorCLI}}
	if err := e.store.CreateEABKey(context.Background(), k, a); err != nil {
		t.Fatal(err)
	}
	return k.KeyID, k.HMAC
}

// count runs a query returning one integer on the store's database, as an
// operator with SQL would.
func (e *env) count(t testing.TB, query string, args ...any) int {
	t.Helper()
	driver, dsn := "pgx", e.storeURL
	if path, ok := strings.CutPrefix(e.storeURL, "sqlite://"); ok {
		driver, dsn = "sqlite", path
		query = strings.NewReplacer("$1", "?", "$2", "?", "$3", "?").Replace(query)
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
