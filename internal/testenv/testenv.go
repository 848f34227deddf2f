// Package testenv gives tests the real services they need (Postgres,
// SoftHSM2) or explains how to get them. In CI (CI=true) a missing service
// fails the test instead of skipping it, so a green CI always means the real
// thing was exercised.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresURLEnv names the variable holding the test database's URL.
const PostgresURLEnv = "ROTOR_TEST_POSTGRES_URL"

// PKCS11ModuleEnv names the variable holding the PKCS#11 module path.
const PKCS11ModuleEnv = "ROTOR_TEST_PKCS11_MODULE"

// DefaultSoftHSMModule is where Debian's softhsm2 package puts the module.
const DefaultSoftHSMModule = "/usr/lib/softhsm/libsofthsm2.so"

// Unavailable skips the test with a how-to message, or fails it in CI.
func Unavailable(t testing.TB, what, howto string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not available, and CI must exercise it: %s", what, howto)
	}
	t.Skipf("%s is not available; to run this test: %s", what, howto)
}

// PostgresURL returns a URL for a fresh, empty schema in the test database,
// dropped when the test ends, so tests can run in parallel and leave nothing
// behind. The URL sets search_path, which both pgx and golang-migrate honour.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(PostgresURLEnv)
	if base == "" {
		Unavailable(t, "PostgreSQL", "start one and set "+PostgresURLEnv+"=postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		Unavailable(t, "PostgreSQL at "+PostgresURLEnv, err.Error())
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create test schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("drop test schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Logf("drop test schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", PostgresURLEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// SoftHSM is a fresh SoftHSM2 token in a temporary directory.
type SoftHSM struct {
	Module string // path of the PKCS#11 module
	Label  string // token label
	PIN    string // user PIN
	SOPIN  string
	Conf   string // SOFTHSM2_CONF path
	Tokens string // the directory holding the token's files
}

// Env points SoftHSM2 at the token, for a process's environment.
func (h *SoftHSM) Env() []string { return []string{"SOFTHSM2_CONF=" + h.Conf} }

// NewSoftHSM initialises a token in t.TempDir() and points SOFTHSM2_CONF at
// it for the rest of the test (so the test cannot be parallel).
func NewSoftHSM(t testing.TB) *SoftHSM {
	t.Helper()
	h := NewSoftHSMToken(t)
	t.Setenv("SOFTHSM2_CONF", h.Conf)
	return h
}

// NewSoftHSMToken is NewSoftHSM leaving the test's environment alone, so
// the test may be parallel: it hands Env to the processes that use the
// token.
func NewSoftHSMToken(t testing.TB) *SoftHSM {
	t.Helper()
	module := os.Getenv(PKCS11ModuleEnv)
	if module == "" {
		module = DefaultSoftHSMModule
	}
	if _, err := os.Stat(module); err != nil {
		Unavailable(t, "the SoftHSM2 PKCS#11 module", "apt-get install -y softhsm2, or set "+PKCS11ModuleEnv)
	}
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		Unavailable(t, "softhsm2-util", "apt-get install -y softhsm2")
	}
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := &SoftHSM{Module: module, Label: "rotor-test", PIN: "1234", SOPIN: "5678", Conf: conf, Tokens: tokens}
	cmd := exec.Command(util, "--init-token", "--free", "--label", h.Label, "--pin", h.PIN, "--so-pin", h.SOPIN)
	cmd.Env = append(os.Environ(), h.Env()...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util --init-token: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return h
}
