package store

import (
	"log/slog"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/testenv"
)

// TestChainTip checks that commits go at the tip when this process wrote
// the head last, and that a head another process moved makes the guess
// miss, roll back without a trace, and commit by locking instead.
func TestChainTip(t *testing.T) {
	t.Parallel()
	url := testenv.PostgresURL(t)
	open := func() (*Store, *pgStore) {
		s, err := Open(t.Context(), url, Options{Migrate: true, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s, s.b.(*pgStore)
	}
	a, pa := open()
	b, pb := open()
	refuse := func(s *Store, detail string) {
		t.Helper()
		if err := s.RecordRefusal(t.Context(), &rotor.Refusal{Time: time.Now(), Reason: rotor.EBadCSR,
			Detail: detail}); err != nil {
			t.Fatalf("record %s: %v", detail, err)
		}
	}
	tips := func(p *pgStore) [2]int64 { return [2]int64{p.tip.hits.Load(), p.tip.misses.Load()} }
	for _, step := range []struct {
		name   string
		s      *Store
		a, b   [2]int64 // hits and misses after the step
		locked bool     // a's guesses are off for tipBackoff
	}{
		// Opening settles the head (the store seals what came before the
		// chain), so the first commit already guesses.
		{"a commits at its tip", a, [2]int64{1, 0}, [2]int64{0, 0}, false},
		{"a again", a, [2]int64{2, 0}, [2]int64{0, 0}, false},
		{"and again", a, [2]int64{3, 0}, [2]int64{0, 0}, false},
		{"b's guess from when it opened misses", b, [2]int64{3, 0}, [2]int64{0, 1}, false},
		{"b moved the head: a's guess misses", a, [2]int64{3, 1}, [2]int64{0, 1}, true},
		{"b locks without guessing", b, [2]int64{3, 1}, [2]int64{0, 1}, true},
		{"a too", a, [2]int64{3, 1}, [2]int64{0, 1}, true},
	} {
		refuse(step.s, step.name)
		if got := tips(pa); got != step.a {
			t.Errorf("after %q: a's hits and misses are %v, want %v", step.name, got, step.a)
		}
		if got := tips(pb); got != step.b {
			t.Errorf("after %q: b's hits and misses are %v, want %v", step.name, got, step.b)
		}
		pa.tip.mu.Lock()
		locked := time.Now().Before(pa.tip.lockUntil)
		pa.tip.mu.Unlock()
		if locked != step.locked {
			t.Errorf("after %q: a locks first: %v, want %v", step.name, locked, step.locked)
		}
	}
	v, err := a.VerifyChain(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Intact() || v.Rows != 7 || v.Head != 7 {
		t.Fatalf("after commits at the tip and missed guesses: %s", v.Report())
	}
}
