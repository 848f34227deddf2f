package rotor_test

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/testpki"
)

// TestBundleSequence: the spiffe_sequence grows at every step of root
// rotations A to B to C, is the same for the same roots in any order (so
// replicas and restarts agree), and goes back with a rolled-back rotation.
func TestBundleSequence(t *testing.T) {
	t.Parallel()
	now := time.Now().Truncate(time.Second)
	root := func(name string, age time.Duration) *x509.Certificate {
		c, _ := testpki.Root(t, name, rotor.ECDSAP256, 24*time.Hour, now.Add(-age))
		return c
	}
	a, b, c := root("A", 2*time.Hour), root("B", time.Hour), root("C", 0)
	seq := func(roots ...*x509.Certificate) uint64 {
		bundle, err := rotor.NewBundle(roots)
		if err != nil {
			t.Fatal(err)
		}
		return bundle.Sequence()
	}
	steps := []struct {
		name  string
		roots []*x509.Certificate
	}{
		{"A", []*x509.Certificate{a}},
		{"A+B", []*x509.Certificate{a, b}},
		{"B", []*x509.Certificate{b}},
		{"B+C", []*x509.Certificate{c, b}},
		{"C", []*x509.Certificate{c}},
	}
	var prev uint64
	for i, s := range steps {
		got := seq(s.roots...)
		if i > 0 && got <= prev {
			t.Errorf("%s: sequence %d, not above %s's %d", s.name, got, steps[i-1].name, prev)
		}
		prev = got
	}
	if want := uint64(c.NotBefore.Unix())*1000 + 999; prev != want {
		t.Errorf("C alone: sequence %d, want %d (its NotBefore, then 999 for one root)", prev, want)
	}
	if seq(a, b) != seq(b, a) {
		t.Errorf("the same roots in another order give another sequence: %d, %d", seq(a, b), seq(b, a))
	}
	if seq(a) >= seq(a, b) {
		t.Errorf("rolled back from A+B to A: sequence %d, want below %d", seq(a), seq(a, b))
	}
}
