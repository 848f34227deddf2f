package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rotor-dev/rotor/store"
)

// The million-row fleet BenchmarkAuditQueries asks: 7,000 identities, each
// renewing every 15 hours for 90 days (143 certificates each, 1,001,000
// in all), the newest about 5 hours old, except 70 identities that
// stopped one renewal short (dying: past their renewal point, expiring
// within hours); 100,000 refusals over the 90 days and 2,002 revocations.
// Rows get chain places after the small history populateAudit writes, with
// placeholder hashes: the benchmark asks questions, it does not verify.
var fleetSQL = map[string][]string{
	"postgres": {
		`INSERT INTO issuances (serial, namespace, service_account, sans, key_algorithm, key_size, public_key_sha256,
			csr_sha256, not_before, not_after, issued_at, issuer_key_id, authenticator, token_subject, remote_addr,
			bundle_fingerprint, certificate, credential, chain_seq, chain_hash)
		SELECT lpad(to_hex(g), 16, '0'), 'ns' || (g % 7000 / 100), 'sa' || (g % 100),
			ARRAY['sa' || (g % 100) || '.ns' || (g % 7000 / 100) || '.svc.cluster.local'], 'ECDSA', 256,
			md5(g::text) || md5(g::text), md5(g::text) || md5((g + 1)::text), t - interval '1 minute', t + interval '24 hours', t,
			CASE WHEN g % 7 = 0 THEN '0f1e2d3c' ELSE '0a1b2c3d' END, CASE WHEN g < 7000 THEN 'token' ELSE 'mtls' END,
			'token:' || lpad(to_hex(g % 7000), 12, '0'), '10.0.' || (g % 250) || '.' || (g % 7000 / 250) || ':4000',
			'sha256:ab', '\x30'::bytea, 'token:' || lpad(to_hex(g % 7000), 12, '0'), 1000 + g, '\x00'::bytea
		FROM (SELECT g, now() - interval '2135 hours' + (g / 7000) * interval '15 hours' + (g % 7000) * interval '1 second' AS t
		      FROM generate_series(0, 1000999) g) s
		WHERE NOT (g % 7000 < 70 AND g / 7000 = 142)`,
		`INSERT INTO refusals (time, reason, detail, namespace, service_account, authenticator, remote_addr, chain_seq, chain_hash)
		SELECT now() - (g * 77) * interval '1 second', CASE WHEN g % 3 = 0 THEN 'unauthenticated' ELSE 'rate-limited' END,
			'refused', '', '', '', '192.0.2.' || (g % 200) || ':5000', 2000000 + g, '\x00'::bytea
		FROM generate_series(1, 100000) g`,
		`INSERT INTO revoked_certificates (serial, revoked_at, reason, reason_code, actor, comment, chain_seq, chain_hash)
		SELECT lpad(to_hex(g), 16, '0'), now() - interval '1 hour', 'keyCompromise', 1, 'cli:bench', '', 3000000 + g, '\x00'::bytea
		FROM generate_series(0, 1000999, 500) g WHERE NOT (g % 7000 < 70 AND g / 7000 = 142)`,
		`ANALYZE`,
	},
	"sqlite": {
		`WITH RECURSIVE n(g) AS (SELECT 0 UNION ALL SELECT g + 1 FROM n WHERE g < 1000999)
		INSERT INTO issuances (serial, namespace, service_account, sans, key_algorithm, key_size, public_key_sha256,
			csr_sha256, not_before, not_after, issued_at, issuer_key_id, authenticator, token_subject, remote_addr,
			bundle_fingerprint, certificate, credential, chain_seq, chain_hash)
		SELECT printf('%016x', g), 'ns' || (g % 7000 / 100), 'sa' || (g % 100),
			json_array('sa' || (g % 100) || '.ns' || (g % 7000 / 100) || '.svc.cluster.local'), 'ECDSA', 256,
			printf('%064x', g), printf('%064x', g + 1),
			strftime('%Y-%m-%d %H:%M:%f', t, '-1 minute'), strftime('%Y-%m-%d %H:%M:%f', t, '+24 hours'), strftime('%Y-%m-%d %H:%M:%f', t),
			CASE WHEN g % 7 = 0 THEN '0f1e2d3c' ELSE '0a1b2c3d' END, CASE WHEN g < 7000 THEN 'token' ELSE 'mtls' END,
			printf('token:%012x', g % 7000), '10.0.' || (g % 250) || '.' || (g % 7000 / 250) || ':4000',
			'sha256:ab', x'30', printf('token:%012x', g % 7000), 1000 + g, x'00'
		FROM (SELECT g, julianday('now', '-2135 hours') + (g / 7000) * 15 / 24.0 + (g % 7000) / 86400.0 AS t FROM n)
		WHERE NOT (g % 7000 < 70 AND g / 7000 = 142)`,
		`WITH RECURSIVE n(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM n WHERE g < 100000)
		INSERT INTO refusals (time, reason, detail, namespace, service_account, authenticator, remote_addr, chain_seq, chain_hash)
		SELECT strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || (g * 77) || ' seconds'),
			CASE WHEN g % 3 = 0 THEN 'unauthenticated' ELSE 'rate-limited' END,
			'refused', '', '', '', '192.0.2.' || (g % 200) || ':5000', 2000000 + g, x'00' FROM n`,
		`WITH RECURSIVE n(g) AS (SELECT 0 UNION ALL SELECT g + 500 FROM n WHERE g + 500 <= 1000999)
		INSERT INTO revoked_certificates (serial, revoked_at, reason, reason_code, actor, comment, chain_seq, chain_hash)
		SELECT printf('%016x', g), strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 hour'), 'keyCompromise', 1, 'cli:bench', '',
			3000000 + g, x'00' FROM n WHERE NOT (g % 7000 < 70 AND g / 7000 = 142)`,
		`ANALYZE`,
	},
}

// queryDB is one connection an operator would hold: psql or sqlite3.
type queryDB interface {
	rows(ctx context.Context, query string) (int, error)
	exec(ctx context.Context, query string) error
}

type pgQueryDB struct{ *pgx.Conn }

func (p pgQueryDB) rows(ctx context.Context, query string) (int, error) {
	rows, err := p.Query(ctx, query)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	return countAll(rows)
}

func (p pgQueryDB) exec(ctx context.Context, query string) error {
	_, err := p.Exec(ctx, query)
	return err
}

type sqliteQueryDB struct{ *sql.DB }

func (s sqliteQueryDB) rows(ctx context.Context, query string) (int, error) {
	rows, err := s.QueryContext(ctx, query)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	return countAll(rows)
}

// countAll reads every row of a result, counting them.
func countAll(rows interface {
	Next() bool
	Err() error
}) (int, error) {
	n := 0
	for rows.Next() {
		n++
	}
	return n, rows.Err()
}

func (s sqliteQueryDB) exec(ctx context.Context, query string) error {
	_, err := s.ExecContext(ctx, query)
	return err
}

// BenchmarkAuditQueries runs every question of docs/audit.md over the
// million-row fleet, per store; each sub-benchmark's ns/op is one answer.
// Filling the fleet takes about a minute per store.
func BenchmarkAuditQueries(b *testing.B) {
	qs := readAuditQuestions(b)
	for _, be := range []struct {
		name string
		b    backend
		open func(b *testing.B, url string) queryDB
	}{
		{"postgres", postgres, func(b *testing.B, url string) queryDB {
			conn, err := pgx.Connect(b.Context(), url)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { conn.Close(context.Background()) })
			return pgQueryDB{conn}
		}},
		{"sqlite", sqlite, func(b *testing.B, url string) queryDB { return sqliteQueryDB{openRaw(b, url)} }},
	} {
		b.Run(be.name, func(b *testing.B) {
			s, url := be.b.open(b, store.Options{})
			populateAudit(b, s)
			db := be.open(b, url)
			start := time.Now()
			for _, stmt := range fleetSQL[be.name] {
				if err := db.exec(b.Context(), stmt); err != nil {
					b.Fatalf("fill the fleet: %v\n%s", err, stmt)
				}
			}
			b.Logf("%s: filled %d issuances in %v", be.name, be.b.count(b, url, `SELECT count(*) FROM issuances`),
				time.Since(start).Round(time.Second))
			for i, q := range qs {
				query := q.query(be.name)
				b.Run(fmt.Sprintf("q%02d", i+1), func(b *testing.B) {
					var n int
					for b.Loop() {
						var err error
						if n, err = db.rows(b.Context(), query); err != nil {
							b.Fatalf("%s: %v", q.title, err)
						}
					}
					b.ReportMetric(float64(n), "rows")
				})
			}
		})
	}
}
