package migrations_test

import (
	"database/sql"
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	_ "github.com/golang-migrate/migrate/v4/database/sqlite"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/rotor-dev/rotor/internal/testenv"
	"github.com/rotor-dev/rotor/migrations"
)

// TestSameVersions checks that both backends carry the same migrations,
// each with its down file, so one schema version means one schema.
func TestSameVersions(t *testing.T) {
	versions := func(fsys fs.FS) []string {
		names, err := fs.Glob(fsys, "*.sql")
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	pg, lite := versions(migrations.Postgres()), versions(migrations.SQLite())
	if len(pg) == 0 || !slices.Equal(pg, lite) {
		t.Fatalf("postgres migrations %v, sqlite migrations %v: want the same, non-empty", pg, lite)
	}
	for _, name := range pg {
		other := strings.NewReplacer(".up.sql", ".down.sql", ".down.sql", ".up.sql").Replace(name)
		if !slices.Contains(pg, other) {
			t.Errorf("%s has no %s", name, other)
		}
	}
}

// TestUpDownUp applies every migration, reverts them all and applies them
// again on each backend, then checks the tables and views are there, so the
// down files really undo the up files.
func TestUpDownUp(t *testing.T) {
	tests := []struct {
		name   string
		fsys   fs.FS
		url    func(t *testing.T) (migrateURL, driver, dsn string)
		tables string
	}{
		{"ok/postgres", migrations.Postgres(), func(t *testing.T) (string, string, string) {
			u := testenv.PostgresURL(t)
			return "pgx5://" + strings.SplitN(u, "://", 2)[1], "pgx", u
		}, `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()
			AND table_name IN ('issuances', 'refusals', 'static_tokens', 'bundle_roots',
				'live_identities', 'identity_bundle_status', 'revocations', 'admin_actions',
				'active_certificates', 'certificates_expiring', 'issuance_by_identity', 'identities_not_renewing')`},
		{"ok/sqlite", migrations.SQLite(), func(t *testing.T) (string, string, string) {
			path := filepath.Join(t.TempDir(), "rotor.db")
			return "sqlite://" + path, "sqlite", path
		}, `SELECT count(*) FROM sqlite_master WHERE type IN ('table', 'view')
			AND name IN ('issuances', 'refusals', 'static_tokens', 'bundle_roots',
				'live_identities', 'identity_bundle_status', 'revocations', 'admin_actions',
				'active_certificates', 'certificates_expiring', 'issuance_by_identity', 'identities_not_renewing')`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			migrateURL, driver, dsn := tt.url(t)
			src, err := iofs.New(tt.fsys, ".")
			if err != nil {
				t.Fatal(err)
			}
			m, err := migrate.NewWithSourceInstance("iofs", src, migrateURL)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			db, err := sql.Open(driver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for i, step := range []struct {
				run    func() error
				tables int
			}{{m.Up, 12}, {m.Down, 0}, {m.Up, 12}, {m.Up, 12}} {
				if err := step.run(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
					t.Fatalf("step %d: %v", i, err)
				}
				var n int
				if err := db.QueryRowContext(t.Context(), tt.tables).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n != step.tables {
					t.Fatalf("after step %d: %d tables, want %d", i, n, step.tables)
				}
			}
		})
	}
}
