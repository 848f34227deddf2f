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
	ok, _, release := l.Hold("a")
	if !ok {
		t.Fatal("Hold does not see the refilled token")
	}
	if take("a") {
		t.Fatal("a held token was taken")
	}
	release(false)
	if !take("a") {
		t.Fatal("a token given back was refused")
	}
	if take("a") {
		t.Fatal("more than the refill allowed")
	}
	now = now.Add(250 * time.Millisecond)
	if ok, wait, _ := l.Hold("a"); ok || wait != 250*time.Millisecond {
		t.Fatalf("half a token: ok %v, wait %v; want 250ms", ok, wait)
	}
	now = now.Add(time.Second) // two tokens
	_, _, r1 := l.Hold("a")
	_, _, r2 := l.Hold("a")
	if ok, _, _ := l.Hold("a"); ok {
		t.Fatal("a third hold on two tokens")
	}
	r1(true)
	r1(true) // released once only
	r2(false)
	if !take("a") || take("a") {
		t.Fatal("after one spent and one given back, exactly one token should be left")
	}
}
