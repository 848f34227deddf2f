package rotor_test

import (
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
)

func TestLimiter(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	l := &rotor.Limiter{Rate: 2, Burst: 3, Now: func() time.Time { return now }}
	take := func(key string) bool { ok, _ := l.Take(key); return ok }
	for i := 0; i < 3; i++ {
		if !take("a") {
			t.Fatalf("call %d within burst refused", i)
		}
	}
	if ok, wait := l.Take("a"); ok || wait != 500*time.Millisecond {
		t.Fatalf("call beyond burst: allowed %v, wait %v; want refused, 500ms", ok, wait)
	}
	if !take("b") {
		t.Fatal("another key shares a's bucket")
	}
	now = now.Add(500 * time.Millisecond) // refills one token at 2/s
	if ok, _ := l.Peek("a"); !ok {
		t.Fatal("Peek does not see the refilled token")
	}
	if !take("a") {
		t.Fatal("refilled token refused (or Peek took it)")
	}
	if take("a") {
		t.Fatal("more than the refill allowed")
	}
	now = now.Add(250 * time.Millisecond)
	if ok, wait := l.Peek("a"); ok || wait != 250*time.Millisecond {
		t.Fatalf("half a token: ok %v, wait %v; want 250ms", ok, wait)
	}
	// Three failures that passed Peek together leave the bucket in debt:
	// 0.5 - 3 tokens, so 1.75s until the next try at 2/s.
	l.Spend("a")
	l.Spend("a")
	l.Spend("a")
	if ok, wait := l.Peek("a"); ok || wait != 1750*time.Millisecond {
		t.Fatalf("in debt: ok %v, wait %v; want 1.75s", ok, wait)
	}
}
