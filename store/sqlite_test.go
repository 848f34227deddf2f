package store_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/store"
)

var sqlite = backend{
	fresh: func(t testing.TB) string { return "sqlite://" + filepath.Join(t.TempDir(), "rotor.db") },
	count: func(t testing.TB, url, query string) int64 {
		t.Helper()
		db := openRaw(t, url)
		var n int64
		if err := db.QueryRowContext(t.Context(), query).Scan(&n); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return n
	},
	rows: func(t testing.TB, url, query string) (int, error) {
		t.Helper()
		return sqliteQueryDB{openRaw(t, url)}.rows(t.Context(), query)
	},
	exec: func(t testing.TB, url, query string) {
		t.Helper()
		if _, err := openRaw(t, url).ExecContext(t.Context(), query); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	},
	// What an operator would type: SQLite's datetime() format.
	timeLit: func(t time.Time) string { return "'" + t.UTC().Format("2006-01-02 15:04:05.999999") + "'" },
}

// openRaw opens the database file behind a sqlite:// URL directly, as the
// sqlite3 shell would.
func openRaw(t testing.TB, url string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", strings.TrimPrefix(url, "sqlite://")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestSQLite(t *testing.T) {
	t.Parallel()
	testStore(t, sqlite)
}

func TestOpenURL(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.Mkdir("data", 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		url  string
		file string // created by a successful Open
		code rotor.ErrorCode
	}{
		{"ok/sqlite-relative", "sqlite://./data/rotor.db", filepath.Join(dir, "data", "rotor.db"), ""},
		{"ok/sqlite-relative-bare", "sqlite://data/bare.db", filepath.Join(dir, "data", "bare.db"), ""},
		{"ok/sqlite-absolute", "sqlite://" + filepath.Join(dir, "abs.db"), filepath.Join(dir, "abs.db"), ""},
		{"fail/sqlite-no-path", "sqlite://", "", rotor.EInternal},
		{"fail/sqlite-query", "sqlite://data/q.db?mode=ro", "", rotor.EInternal},
		{"ok/sqlite-creates-its-dir", "sqlite://newdir/sub/rotor.db", filepath.Join(dir, "newdir", "sub", "rotor.db"), ""},
		{"fail/sqlite-dir-is-a-file", "sqlite://data/rotor.db/x.db", "", rotor.EInternal},
		{"fail/unknown-scheme", "mysql://root@127.0.0.1/rotor", "", rotor.EInternal},
		{"fail/no-scheme", "rotor.db", "", rotor.EInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := store.Open(t.Context(), tt.url, store.Options{Migrate: true, Logger: discard})
			if code := rotor.ErrorCodeOf(err); code != tt.code {
				t.Fatalf("Open(%q) error %v, want code %q", tt.url, err, tt.code)
			}
			if err != nil {
				if s != nil {
					t.Fatalf("Open(%q) failed but returned a non-nil store", tt.url)
				}
				return
			}
			defer s.Close()
			if _, err := os.Stat(tt.file); err != nil {
				t.Fatalf("Open(%q) did not create %s: %v", tt.url, tt.file, err)
			}
			if strings.Contains(tt.name, "creates") {
				if fi, err := os.Stat(filepath.Dir(tt.file)); err != nil || fi.Mode().Perm() != 0o700 {
					t.Errorf("created directory of %s: %v, mode %v; want 0700", tt.file, err, fi.Mode())
				}
			}
		})
	}
}

// TestSQLiteLocked holds the write lock from another connection past the
// store's busy timeout: writes fail with EStoreUnavailable, reads still
// work (WAL), and writes work again once the lock is released.
func TestSQLiteLocked(t *testing.T) {
	t.Parallel()
	s, url := sqlite.open(t, store.Options{BusyTimeout: 50 * time.Millisecond})
	id := rotor.Identity{Namespace: "ns", ServiceAccount: "sa"}
	before := newIssuance(t, id, time.Now())
	if err := s.RecordIssuance(t.Context(), before); err != nil {
		t.Fatalf("RecordIssuance: %v", err)
	}

	tx, err := openRaw(t, url).BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`DELETE FROM refusals`); err != nil { // takes the write lock
		t.Fatal(err)
	}
	_, tok, _ := rotor.NewStaticToken(rand.Reader, id, time.Now())
	for name, call := range map[string]func() error{
		"RecordIssuance": func() error { return s.RecordIssuance(t.Context(), newIssuance(t, id, time.Now())) },
		"RecordRefusal":  func() error { return s.RecordRefusal(t.Context(), &rotor.Refusal{Time: time.Now()}) },
		"CreateToken":    func() error { return s.CreateToken(t.Context(), tok, testAction) },
		"Ping":           func() error { return s.Ping(t.Context()) },
	} {
		if code := rotor.ErrorCodeOf(call()); code != rotor.EStoreUnavailable {
			t.Errorf("%s while another process holds the lock: code %q, want %q", name, code, rotor.EStoreUnavailable)
		}
	}
	if _, err := s.Issuance(t.Context(), before.Serial); err != nil {
		t.Errorf("Issuance while another process holds the write lock: %v", err)
	}

	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordIssuance(t.Context(), newIssuance(t, id, time.Now())); err != nil {
		t.Fatalf("RecordIssuance after the lock was released: %v", err)
	}
	if err := s.CreateToken(t.Context(), tok, testAction); err != nil {
		t.Fatalf("CreateToken after the lock was released: %v", err)
	}
}

// helperDBEnv tells the test binary to act as `rotor-ca token create`.
const helperDBEnv = "ROTOR_STORE_TEST_HELPER_DB"

// TestSQLiteTwoProcesses runs a second process that creates tokens in the
// file while this one records issuances into it, as `rotor-ca token create`
// does beside a serving CA.
func TestSQLiteTwoProcesses(t *testing.T) {
	if os.Getenv(helperDBEnv) != "" {
		t.Skip("helper process")
	}
	t.Parallel()
	s, url := sqlite.open(t, store.Options{})
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestSQLiteTokenCreateHelper$")
	cmd.Env = append(os.Environ(), helperDBEnv+"="+url)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	id := rotor.Identity{Namespace: "ns", ServiceAccount: "sa"}
	recorded := 0
	for waiting := true; waiting; recorded++ {
		if err := s.RecordIssuance(t.Context(), newIssuance(t, id, time.Now())); err != nil {
			t.Fatalf("RecordIssuance while another process writes: %v", err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("helper process: %v\n%s", err, stderr.String())
			}
			waiting = false
		default:
		}
	}
	var hashes int
	for sc := bufio.NewScanner(&stdout); sc.Scan(); {
		hash, ok := strings.CutPrefix(sc.Text(), "hash ")
		if !ok {
			continue
		}
		h, err := hex.DecodeString(hash)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.LookupToken(t.Context(), h); err != nil {
			t.Fatalf("LookupToken of a token the other process created: %v", err)
		}
		hashes++
	}
	if hashes != 20 {
		t.Fatalf("helper created %d tokens, want 20\n%s", hashes, stderr.String())
	}
	if got := sqlite.count(t, url, `SELECT count(*) FROM issuances`); got != int64(recorded) {
		t.Fatalf("%d issuances in the file, want %d", got, recorded)
	}
}

// TestSQLiteTokenCreateHelper is the second process of
// TestSQLiteTwoProcesses; run on its own it does nothing.
func TestSQLiteTokenCreateHelper(t *testing.T) {
	url := os.Getenv(helperDBEnv)
	if url == "" {
		t.Skip("only runs as TestSQLiteTwoProcesses's helper process")
	}
	s, err := store.Open(t.Context(), url, store.Options{Migrate: true, Logger: discard})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	for i := range 20 {
		id := rotor.Identity{Namespace: "tokens", ServiceAccount: fmt.Sprintf("sa-%d", i)}
		_, tok, err := rotor.NewStaticToken(rand.Reader, id, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CreateToken(t.Context(), tok, testAction); err != nil {
			t.Fatalf("CreateToken: %v", err)
		}
		fmt.Printf("hash %x\n", tok.Hash)
	}
}
