package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/pgx/v5" // registers pgx5://
	"github.com/golang-migrate/migrate/v4/database/sqlite"
	"github.com/golang-migrate/migrate/v4/source/iofs"

	"github.com/rotor-dev/rotor/migrations"
)

// Migrate brings the schema at rawURL (a URL Open accepts) up to date. A
// schema already current is success. It is safe to run from several
// processes at once: on PostgreSQL golang-migrate holds an advisory lock for
// the whole run; on SQLite this package holds an flock on the database's
// directory, since golang-migrate's SQLite lock only covers one process.
func Migrate(ctx context.Context, rawURL string) error {
	u, err := ParseURL(rawURL)
	if err != nil {
		return err
	}
	if err := u.makeDir(); err != nil {
		return err
	}
	return migrateURL(ctx, u)
}

func migrateURL(ctx context.Context, u URL) error {
	if u.Backend == "sqlite" {
		return migrateSQLite(ctx, u.Path)
	}
	// golang-migrate picks its driver by scheme; pgx5 is pgx v5.
	_, rest, _ := strings.Cut(u.Raw, "://")
	return migratePostgres(ctx, migrations.Postgres(), "pgx5://"+rest)
}

func migratePostgres(ctx context.Context, fsys fs.FS, dbURL string) error {
	src, err := iofs.New(fsys, ".")
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	m, err := migrate.NewWithSourceInstance("iofs", src, dbURL)
	if err != nil {
		src.Close()
		return migrateErr(err)
	}
	return up(ctx, m)
}

func migrateSQLite(ctx context.Context, path string) error {
	unlock, err := lockDir(ctx, path)
	if err != nil {
		return migrateErr(err)
	}
	defer unlock()
	db, err := sql.Open("sqlite", sqliteDSN(path, defaultBusyTimeout, false))
	if err != nil {
		return migrateErr(err)
	}
	defer db.Close()
	drv, err := sqlite.WithInstance(db, &sqlite.Config{})
	if err != nil {
		return migrateErr(err)
	}
	src, err := iofs.New(migrations.SQLite(), ".")
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "sqlite", drv)
	if err != nil {
		return migrateErr(err)
	}
	return up(ctx, m)
}

// up applies every pending migration and closes m. Cancelling ctx stops the
// run between two migrations, never inside one.
func up(ctx context.Context, m *migrate.Migrate) error {
	defer m.Close()
	stop := context.AfterFunc(ctx, func() {
		select {
		case m.GracefulStop <- true:
		default:
		}
	})
	defer stop()
	err := m.Up()
	if errors.Is(err, migrate.ErrNoChange) {
		err = nil
	}
	if err == nil {
		err = ctx.Err()
	}
	return migrateErr(err)
}

func migrateErr(err error) error {
	if err == nil {
		return nil
	}
	return unavailable(fmt.Errorf("migrate store schema: %w", err))
}

// latestVersion is the highest migration version this binary carries.
func latestVersion(fsys fs.FS) uint64 {
	names, _ := fs.Glob(fsys, "*.up.sql")
	var v uint64
	for _, n := range names {
		digits, _, _ := strings.Cut(n, "_")
		if x, err := strconv.ParseUint(digits, 10, 64); err == nil && x > v {
			v = x
		}
	}
	return v
}

// checkSchema turns the schema_migrations row into a verdict. A schema newer
// than this binary is fine (migrations only add), so a rolling upgrade can
// migrate while old replicas still serve.
func checkSchema(version int64, dirty bool, want uint64) error {
	switch {
	case dirty:
		return unavailable(fmt.Errorf("schema version %d is dirty: a migration failed half-way; fix it by hand, then `migrate force`", version))
	case version < 0 || uint64(version) < want:
		return unavailable(fmt.Errorf("schema version %d, this binary needs %d: run `rotor-ca migrate`", version, want))
	}
	return nil
}
