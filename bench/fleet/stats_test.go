package fleet

import (
	"math"
	"testing"
)

// TestFlatness: peak and mean run from the first second with a count to
// the last whole one, and a wider window smooths a one-second burst.
func TestFlatness(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		perSec      []int
		n           int
		peak        int
		mean, ratio float64
	}{
		{"ok/flat", []int{0, 0, 10, 10, 10, 10, 3}, 1, 10, 10, 1},
		{"ok/burst", []int{0, 10, 10, 30, 10, 10, 1}, 1, 30, 14, 30.0 / 14},
		{"ok/burst-in-window", []int{0, 10, 10, 30, 10, 10, 1}, 5, 14, 14, 1},
		{"ok/ramp", []int{5, 10, 15, 10}, 1, 15, 10, 1.5},
		{"short", []int{0, 0, 4, 4}, 5, 0, 0, 0},
		{"none", []int{0, 0, 0}, 1, 0, 0, 0},
		{"empty", nil, 1, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			peak, mean, ratio := flatness(tt.perSec, tt.n)
			if peak != tt.peak || math.Abs(mean-tt.mean) > 1e-9 || math.Abs(ratio-tt.ratio) > 1e-9 {
				t.Errorf("flatness = %d, %v, %v; want %d, %v, %v", peak, mean, ratio, tt.peak, tt.mean, tt.ratio)
			}
		})
	}
}
