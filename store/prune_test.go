package store_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/store"
)

func TestPrunePostgres(t *testing.T) {
	t.Parallel()
	testPrune(t, postgres)
}

func TestPruneSQLite(t *testing.T) {
	t.Parallel()
	testPrune(t, sqlite)
}

// pruneFixture is a store whose chain starts with old rows (places 1 to
// 7: three certificates expired 100 days ago, one of them revoked, three
// old refusals), then a certificate still valid (place 8), then an old
// refusal (9, kept: it is after the live certificate) and a fresh one
// (10).
type pruneFixture struct {
	s      *store.Store
	url    string
	cutoff time.Time
	early  store.Checkpoint // the head at place 4, before prune
	head   store.Checkpoint // the head at place 10, before prune
}

func seedPrune(t *testing.T, b backend) pruneFixture {
	t.Helper()
	s, url := b.open(t, store.Options{})
	ctx := t.Context()
	now := time.Now()
	f := pruneFixture{s: s, url: url, cutoff: now.Add(-90 * 24 * time.Hour)}
	old := now.Add(-101 * 24 * time.Hour)
	id := rotor.Identity{Namespace: "shop", ServiceAccount: "web"}
	refuse := func(at time.Time) {
		t.Helper()
		if err := s.RecordRefusal(ctx, &rotor.Refusal{Time: at, Reason: rotor.EUnauthenticated, Detail: "bad token",
			RemoteAddr: "192.0.2.1:1234"}); err != nil {
			t.Fatal(err)
		}
	}
	var serials []string
	for i := range 3 {
		iss := newIssuance(t, id, old.Add(time.Duration(i)*time.Minute))
		if err := s.RecordIssuance(ctx, iss); err != nil {
			t.Fatal(err)
		}
		serials = append(serials, iss.Serial)
	}
	a := rotor.AdminAction{Time: old.Add(time.Hour), Actor: rotor.Actor{Name: "cli:test", Kind: rotor.ActorCLI}, Reason: "lost"}
	if err := s.RevokeCertificate(ctx, rotor.Revocation{Serial: serials[1], Time: a.Time,
		Reason: rotor.ReasonKeyCompromise, Actor: a.Actor.Name}, a); err != nil {
		t.Fatal(err)
	} // places 4 (revocation) and 5 (its admin action)
	var err error
	if f.early, err = s.ChainHead(ctx); err != nil {
		t.Fatal(err)
	}
	refuse(old.Add(2 * time.Hour))
	refuse(old.Add(3 * time.Hour))
	if err := s.RecordIssuance(ctx, newIssuance(t, id, now.Add(-time.Hour))); err != nil {
		t.Fatal(err)
	}
	refuse(old.Add(4 * time.Hour))
	refuse(now)
	if f.head, err = s.ChainHead(ctx); err != nil {
		t.Fatal(err)
	}
	if f.early.Seq != 5 || f.head.Seq != 10 {
		t.Fatalf("chain places %d and %d, want 5 and 10", f.early.Seq, f.head.Seq)
	}
	return f
}

func prune(t *testing.T, f pruneFixture, o store.PruneOptions) *store.PruneResult {
	t.Helper()
	o.Action = rotor.AdminAction{Time: time.Now(), Actor: rotor.Actor{Name: "cli:test", Kind: rotor.ActorCLI}}
	res, err := f.s.Prune(t.Context(), f.cutoff, o)
	if err != nil {
		t.Fatalf("Prune: %v", err)
	}
	return res
}

func testPrune(t *testing.T, b backend) {
	// Places 1 to 7 go: 3 issuances, 1 revocation, 1 admin action, 2
	// refusals. Place 8 is a live certificate, so 9 stays although old.
	want := map[string]int64{"issuances": 3, "revoked_certificates": 1, "admin_action_log": 1, "refusals": 2,
		"refusal_summaries": 0}
	total := func(t *testing.T, f pruneFixture) int64 {
		return b.count(t, f.url, `SELECT (SELECT count(*) FROM issuances) + (SELECT count(*) FROM refusals) +
			(SELECT count(*) FROM revoked_certificates) + (SELECT count(*) FROM admin_action_log)`)
	}
	for _, batch := range []int{0, 2} {
		t.Run(fmt.Sprintf("ok/batch-%d", batch), func(t *testing.T) {
			t.Parallel()
			f := seedPrune(t, b)
			dry := prune(t, f, store.PruneOptions{Batch: batch, DryRun: true})
			if dry.From != 0 || dry.To != 7 || fmt.Sprint(dry.Rows) != fmt.Sprint(want) {
				t.Fatalf("dry run: places %d-%d, rows %v; want 1-7, %v", dry.From+1, dry.To, dry.Rows, want)
			}
			if n := total(t, f); n != 10 {
				t.Fatalf("a dry run left %d rows, want all 10", n)
			}
			res := prune(t, f, store.PruneOptions{Batch: batch})
			wantBatches := map[int]int{0: 1, 2: 4}[batch]
			if res.To != 7 || res.Batches != wantBatches || fmt.Sprint(res.Rows) != fmt.Sprint(want) {
				t.Fatalf("prune: to %d in %d batches, rows %v; want 7 in %d, %v", res.To, res.Batches, res.Rows,
					wantBatches, want)
			}
			// Three rows stay, and the prune's own admin action is added.
			if n := total(t, f); n != 4 {
				t.Fatalf("%d rows after prune, want 4", n)
			}
			if n := b.count(t, f.url, `SELECT count(*) FROM admin_actions WHERE action = 'audit.prune'
				AND target = 'audit chain places 1-7' AND actor = 'cli:test'`); n != 1 {
				t.Fatalf("%d audit.prune admin actions, want 1", n)
			}
			// The chain still verifies, on its own and against the head
			// kept before the prune; the checkpoint before the new base
			// can no longer be checked, and says so.
			if v := verify(t, f.s, &f.head); !v.Intact() || v.Base != 7 || v.Head != 11 {
				t.Fatalf("after prune, against the kept head: base %d head %d\n%s", v.Base, v.Head, v.Report())
			}
			v := verify(t, f.s, &f.early)
			if v.Intact() || v.Problems[0].Kind != store.ProblemDeleted {
				t.Fatalf("a checkpoint before the base verified:\n%s", v.Report())
			}
			if again := prune(t, f, store.PruneOptions{Batch: batch}); again.Total() != 0 || again.To != 7 {
				t.Fatalf("a second prune deleted %v (to %d)", again.Rows, again.To)
			}
		})
	}
	t.Run("refused/altered", func(t *testing.T) {
		t.Parallel()
		f := seedPrune(t, b)
		b.exec(t, f.url, `UPDATE refusals SET detail = 'nothing to see' WHERE chain_seq = 6`)
		_, err := f.s.Prune(t.Context(), f.cutoff, store.PruneOptions{Batch: 3})
		var e *rotor.Error
		if !errors.As(err, &e) || e.Code != rotor.EConflict {
			t.Fatalf("Prune over an altered row: %v, want %s", err, rotor.EConflict)
		}
		// Batch 1-3 verified and went; the batch with the edit did not,
		// and the edit is still there for audit verify to report.
		if n := total(t, f); n != 8 {
			t.Fatalf("%d rows after a refused prune, want 8 (the first batch of 3 gone, its admin action added)", n)
		}
		if v := verify(t, f.s, nil); v.Intact() || v.Problems[0].Seq != 6 {
			t.Fatalf("the edit at place 6 is not reported:\n%s", v.Report())
		}
	})
}
