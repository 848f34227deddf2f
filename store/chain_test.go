package store_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/store"
)

func TestChainPostgres(t *testing.T) {
	t.Parallel()
	testChain(t, postgres)
}

func TestChainSQLite(t *testing.T) {
	t.Parallel()
	testChain(t, sqlite)
}

// chainFixture is a store with a known history: three issuances, three
// refusals and a refusal summary, places 1 to 7 in that order.
type chainFixture struct {
	s        *store.Store
	url      string
	serials  []string
	verified store.Checkpoint // the head once written
}

func seedChain(t *testing.T, b backend) chainFixture {
	t.Helper()
	s, url := b.open(t, store.Options{})
	f := chainFixture{s: s, url: url}
	id := rotor.Identity{Namespace: "payments", ServiceAccount: "api"}
	now := time.Now()
	for i := range 3 {
		iss := newIssuance(t, id, now.Add(time.Duration(i)*time.Second))
		if err := s.RecordIssuance(t.Context(), iss); err != nil {
			t.Fatal(err)
		}
		f.serials = append(f.serials, iss.Serial)
	}
	for i := range 3 {
		r := &rotor.Refusal{Time: now, Reason: rotor.EUnauthenticated, Detail: fmt.Sprintf("bad token %d", i),
			RemoteAddr: "192.0.2.1:1234"}
		if err := s.RecordRefusal(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	sum := &rotor.RefusalSummary{Source: "192.0.2.9", First: now, Last: now.Add(time.Second), Count: 40,
		Reasons: map[rotor.ErrorCode]int{rotor.EUnauthenticated: 30, rotor.ERateLimited: 10}}
	if err := s.RecordRefusalSummary(t.Context(), sum); err != nil {
		t.Fatal(err)
	}
	head, err := s.ChainHead(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if head.Seq != 7 {
		t.Fatalf("chain head after 7 rows is at place %d", head.Seq)
	}
	f.verified = head
	return f
}

func verify(t *testing.T, s *store.Store, cp *store.Checkpoint) *store.Verification {
	t.Helper()
	v, err := s.VerifyChain(t.Context(), cp)
	if err != nil {
		t.Fatalf("VerifyChain: %v", err)
	}
	return v
}

func testChain(t *testing.T, b backend) {
	t.Run("intact", func(t *testing.T) {
		t.Parallel()
		f := seedChain(t, b)
		v := verify(t, f.s, &f.verified)
		if !v.Intact() || v.Rows != 7 || v.Head != 7 {
			t.Fatalf("fresh chain: %s", v.Report())
		}
	})

	// Each change an attacker with plain SQL might make, and what the
	// first problem reported must say.
	tampers := []struct {
		name  string
		sql   func(f chainFixture) string
		kind  string
		where string // in the first problem
	}{
		{"edit an issuance", func(f chainFixture) string {
			return `UPDATE issuances SET namespace = 'evil' WHERE serial = '` + f.serials[1] + `'`
		}, store.ProblemAltered, "issuances row "},
		{"edit a hash", func(f chainFixture) string {
			return `UPDATE refusals SET chain_hash = (SELECT chain_hash FROM issuances WHERE chain_seq = 1) WHERE chain_seq = 5`
		}, store.ProblemAltered, "(chain place 5)"},
		{"delete a refusal", func(chainFixture) string { return `DELETE FROM refusals WHERE chain_seq = 4` },
			store.ProblemDeleted, "chain place 4"},
		{"delete the newest row", func(chainFixture) string { return `DELETE FROM refusal_summaries` },
			store.ProblemDeleted, "chain place 7"},
		{"insert a refusal", func(chainFixture) string {
			return `INSERT INTO refusals (time, reason, detail) VALUES ('2026-01-01 00:00:00', 'unauthenticated', 'x')`
		}, store.ProblemInserted, "no place in the chain"},
		{"insert a refusal past the head", func(chainFixture) string {
			return `INSERT INTO refusals (time, reason, detail, chain_seq) VALUES ('2026-01-01 00:00:00', 'unauthenticated', 'x', 8)`
		}, store.ProblemInserted, "after the chain's head"},
		{"insert an issuance at a taken place", func(chainFixture) string {
			return `INSERT INTO issuances (serial, namespace, service_account, sans, key_algorithm, key_size,
				public_key_sha256, csr_sha256, not_before, not_after, issued_at, issuer_key_id, authenticator,
				token_subject, remote_addr, certificate, chain_seq, chain_hash)
				SELECT 'abcdef', namespace, service_account, sans, key_algorithm, key_size, public_key_sha256,
				csr_sha256, not_before, not_after, issued_at, issuer_key_id, authenticator, token_subject,
				remote_addr, certificate, 6, chain_hash FROM issuances WHERE chain_seq = 2`
		}, store.ProblemInserted, "issuances row abcdef (chain place 6): a second row"},
		{"reorder two issuances", func(chainFixture) string {
			return `UPDATE issuances SET chain_seq = -1 WHERE chain_seq = 1; ` +
				`UPDATE issuances SET chain_seq = 1 WHERE chain_seq = 3; ` +
				`UPDATE issuances SET chain_seq = 3 WHERE chain_seq = -1`
		}, store.ProblemReordered, "written at place 3"},
	}
	for _, tc := range tampers {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := seedChain(t, b)
			b.exec(t, f.url, tc.sql(f))
			v := verify(t, f.s, nil)
			if v.Intact() {
				t.Fatalf("tampered chain verified intact: %s", v.Report())
			}
			first := v.Problems[0]
			if first.Kind != tc.kind || !strings.Contains(first.String(), tc.where) {
				t.Fatalf("first problem is %q, want %s mentioning %q; report:\n%s", first, tc.kind, tc.where, v.Report())
			}
		})
	}

	// An attacker who edits a row and recomputes the whole chain (here by
	// making the store seal every row afresh) gets a chain that verifies,
	// but not against a checkpoint kept from before.
	t.Run("recomputed chain against a checkpoint", func(t *testing.T) {
		t.Parallel()
		f := seedChain(t, b)
		f.s.Close()
		b.exec(t, f.url, `UPDATE issuances SET namespace = 'evil' WHERE serial = '`+f.serials[0]+`'`)
		for _, table := range []string{"issuances", "refusals", "refusal_summaries"} {
			b.exec(t, f.url, `UPDATE `+table+` SET chain_seq = NULL, chain_hash = NULL`)
		}
		b.exec(t, f.url, `UPDATE audit_chain SET seq = 0, hash = base_hash, sealed = false`)
		s, err := store.Open(t.Context(), f.url, store.Options{Logger: discard})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if v := verify(t, s, nil); !v.Intact() || v.Head != 7 {
			t.Fatalf("recomputed chain should verify on its own: %s", v.Report())
		}
		v := verify(t, s, &f.verified)
		if v.Intact() || v.Problems[0].Kind != store.ProblemRewritten {
			t.Fatalf("recomputed chain against the old checkpoint: %s", v.Report())
		}
	})

	// Replicas sharing the store take turns in one chain.
	t.Run("two writers", func(t *testing.T) {
		t.Parallel()
		s1, url := b.open(t, store.Options{})
		s2, err := store.Open(t.Context(), url, store.Options{Logger: discard})
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		id := rotor.Identity{Namespace: "ns", ServiceAccount: "sa"}
		var wg sync.WaitGroup
		const each = 60
		for _, s := range []*store.Store{s1, s2} {
			for w := range each {
				wg.Go(func() {
					var err error
					if w%3 == 0 {
						err = s.RecordRefusal(t.Context(), &rotor.Refusal{Time: time.Now(), Reason: rotor.EBadCSR, Detail: "x"})
					} else {
						err = s.RecordIssuance(t.Context(), newIssuance(t, id, time.Now()))
					}
					if err != nil {
						t.Error(err)
					}
				})
			}
		}
		wg.Wait()
		v := verify(t, s1, nil)
		if !v.Intact() || v.Rows != 2*each || v.Head != 2*each {
			t.Fatalf("after concurrent writers: %s", v.Report())
		}
	})
}
