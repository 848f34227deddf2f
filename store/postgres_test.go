package store_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/testenv"
	"github.com/rotor-dev/rotor/store"
)

var postgres = backend{
	fresh: func(t testing.TB) string { return testenv.PostgresURL(t) },
	count: func(t testing.TB, url, query string) int64 {
		t.Helper()
		conn, err := pgx.Connect(t.Context(), url)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		defer conn.Close(context.Background())
		var n int64
		if err := conn.QueryRow(t.Context(), query).Scan(&n); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return n
	},
	rows: func(t testing.TB, url, query string) (int, error) {
		t.Helper()
		conn, err := pgx.Connect(t.Context(), url)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		defer conn.Close(context.Background())
		return pgQueryDB{conn}.rows(t.Context(), query)
	},
	exec: func(t testing.TB, url, query string) {
		t.Helper()
		conn, err := pgx.Connect(t.Context(), url)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(t.Context(), query); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	},
	timeLit: func(t time.Time) string { return "'" + t.UTC().Format("2006-01-02 15:04:05.999999") + "+00'" },
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	testStore(t, postgres)
}

// TestPostgresUnreachable points a store at a port nothing listens on.
func TestPostgresUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	u := "postgres://postgres@" + addr + "/test?sslmode=disable&connect_timeout=2"
	tests := []struct {
		name string
		do   func() error
	}{
		{"fail/open", func() error {
			_, err := store.Open(t.Context(), u, store.Options{})
			return err
		}},
		{"fail/migrate", func() error { return store.Migrate(t.Context(), u) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); rotor.ErrorCodeOf(err) != rotor.EStoreUnavailable {
				t.Fatalf("error %v, want code %q", err, rotor.EStoreUnavailable)
			}
		})
	}
}

// TestPostgresBackendsTerminated kills the store's sessions from an admin
// connection, as a failover or restart would: calls fail with
// EStoreUnavailable until the pool has reconnected, then work again.
func TestPostgresBackendsTerminated(t *testing.T) {
	t.Parallel()
	base := postgres.fresh(t)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	app := "rotor-test-" + u.Query().Get("search_path")
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	const maxConns = 3
	s, err := store.Open(t.Context(), u.String(), store.Options{Migrate: true, MaxConns: maxConns, Logger: discard})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	id := rotor.Identity{Namespace: "ns", ServiceAccount: "sa"}
	if err := s.RecordIssuance(t.Context(), newIssuance(t, id, time.Now())); err != nil {
		t.Fatalf("RecordIssuance before the outage: %v", err)
	}

	killed := postgres.count(t, base, fmt.Sprintf(`SELECT count(pg_terminate_backend(pid))
		FROM pg_stat_activity WHERE application_name = '%s'`, app))
	if killed == 0 {
		t.Fatal("no session of the store's to terminate")
	}
	var serials []string
	for name, call := range map[string]func() error{
		"RecordIssuance": func() error {
			iss := newIssuance(t, id, time.Now())
			err := s.RecordIssuance(t.Context(), iss)
			if err == nil {
				serials = append(serials, iss.Serial)
			}
			return err
		},
		"Ping": func() error { return s.Ping(t.Context()) },
	} {
		// The first failure makes the store drop every dead connection,
		// so the second attempt must work.
		var err error
		for range 2 {
			if err = call(); err == nil {
				break
			}
			if code := rotor.ErrorCodeOf(err); code != rotor.EStoreUnavailable {
				t.Fatalf("%s during the outage: %v, want code %q", name, err, rotor.EStoreUnavailable)
			}
			t.Logf("%s during the outage: %v", name, err)
		}
		if err != nil {
			t.Fatalf("%s did not recover: %v", name, err)
		}
	}
	for _, serial := range serials {
		if _, err := s.Issuance(t.Context(), serial); err != nil {
			t.Fatalf("Issuance(%s) after the outage: %v", serial, err)
		}
	}
}

// TestPostgresSchemaDocumented checks that every column carries a COMMENT,
// so \d+ answers an operator's question about what a column means.
func TestPostgresSchemaDocumented(t *testing.T) {
	t.Parallel()
	_, u := postgres.open(t, store.Options{})
	undocumented := postgres.count(t, u, `SELECT count(*) FROM information_schema.columns c
		JOIN information_schema.tables t USING (table_schema, table_name)
		WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
		AND c.table_name <> 'schema_migrations' AND c.column_name <> 'id'
		AND col_description((quote_ident(c.table_schema) || '.' || quote_ident(c.table_name))::regclass,
			c.ordinal_position) IS NULL`)
	if undocumented != 0 {
		t.Fatalf("%d columns without a COMMENT", undocumented)
	}
}
