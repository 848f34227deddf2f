package rotor_test

import (
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := &rotor.Limiter{Rate: 2, Burst: 3, Now: func() time.Time { return now }}
	for i := 0; i < 3; i++ {
		if !l.Allow("a") {
			t.Fatalf("call %d within burst refused", i)
		}
	}
	if l.Allow("a") {
		t.Fatal("call beyond burst allowed")
	}
	if !l.Allow("b") {
		t.Fatal("another key shares a's bucket")
	}
	now = now.Add(500 * time.Millisecond) // refills one token at 2/s
	if !l.Allow("a") {
		t.Fatal("refilled token refused")
	}
	if l.Allow("a") {
		t.Fatal("more than the refill allowed")
	}
}
