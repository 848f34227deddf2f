package store

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/testenv"
)

// TestIssuanceGroups commits batches of every awkward size, issuances
// mixed with refusals (on Postgres at the tip and by locking), and reads
// every serial back in its place in the chain.
func TestIssuanceGroups(t *testing.T) {
	t.Parallel()
	for _, be := range []struct {
		name    string
		url     func(t *testing.T) string
		serials func(t *testing.T, s *Store) []string // in chain order
		lock    func(s *Store)                        // the next commit locks first
	}{
		{"postgres", func(t *testing.T) string { return testenv.PostgresURL(t) },
			func(t *testing.T, s *Store) []string {
				q, err := s.b.(*pgStore).pool.Query(t.Context(), `SELECT serial FROM issuances ORDER BY chain_seq`)
				if err != nil {
					t.Fatal(err)
				}
				got, err := pgx.CollectRows(q, pgx.RowTo[string])
				if err != nil {
					t.Fatal(err)
				}
				return got
			},
			func(s *Store) {
				tip := &s.b.(*pgStore).tip
				tip.mu.Lock()
				tip.known = false
				tip.mu.Unlock()
			}},
		{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "rotor.db") },
			func(t *testing.T, s *Store) []string {
				rows, err := s.b.(*sqliteStore).r.QueryContext(t.Context(), `SELECT serial FROM issuances ORDER BY chain_seq`)
				if err != nil {
					t.Fatal(err)
				}
				defer rows.Close()
				var got []string
				for rows.Next() {
					var serial string
					if err := rows.Scan(&serial); err != nil {
						t.Fatal(err)
					}
					got = append(got, serial)
				}
				if err := rows.Err(); err != nil {
					t.Fatal(err)
				}
				return got
			},
			func(*Store) {}},
	} {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			s, err := Open(t.Context(), be.url(t), Options{Migrate: true, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			commit := func(ctx context.Context, recs []record) error {
				if p, ok := s.b.(*pgStore); ok {
					return p.commit(ctx, recs)
				}
				return s.b.(*sqliteStore).commit(ctx, recs)
			}
			var want []string
			rows := 0
			for _, tc := range []struct {
				n    int // issuances
				lock bool
			}{{1, false}, {3, false}, {5, true}, {21, false}, {64, true}, {85, false}, {256, false}} {
				recs := make([]record, 0, tc.n+2)
				for i := range tc.n {
					iss := &rotor.Issuance{Serial: fmt.Sprintf("%x%04x", tc.n, i), SANs: []string{"a.example"},
						Certificate: []byte{1}, Identity: rotor.Identity{Namespace: "ns", ServiceAccount: "sa"},
						KeyAlgorithm: "ECDSA", KeySize: 256, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
						IssuedAt: time.Now()}
					recs = append(recs, record{iss: iss, digest: issuanceDigest(iss)})
					if i == 2 || i == tc.n-1 {
						ref := &rotor.Refusal{Time: time.Now(), Reason: rotor.EBadCSR, Detail: "between issuances"}
						recs = append(recs, record{ref: ref, digest: refusalDigest(ref)})
					}
				}
				if tc.lock {
					be.lock(s)
				}
				if err := commit(t.Context(), recs); err != nil {
					t.Fatalf("commit %d issuances: %v", tc.n, err)
				}
				for _, r := range recs {
					rows++
					if r.iss != nil {
						want = append(want, r.iss.Serial)
					}
				}
			}
			if got := be.serials(t, s); !slices.Equal(got, want) {
				t.Fatalf("issuances in chain order: %d rows, want %d (first %v)", len(got), len(want), got[:min(4, len(got))])
			}
			v, err := s.VerifyChain(t.Context(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !v.Intact() || v.Rows != int64(rows) {
				t.Fatalf("after grouped inserts: %s", v.Report())
			}
		})
	}
}
