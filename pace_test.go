package rotor

import (
	"strings"
	"testing"
	"time"
)

// TestPacedRenewalTime: the serial's last octet is the load level and the
// four before it the place in the spread, so a calm CA's certificates
// renew within a twelfth of the lifetime before RenewalTime and a busy
// one's within a third; a serial too short to carry them renews at
// RenewalTime.
func TestPacedRenewalTime(t *testing.T) {
	t.Parallel()
	issued := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	life := 24 * time.Hour
	notAfter := issued.Add(life)
	base := RenewalTime(issued, notAfter)
	tests := []struct {
		name, tail string // the serial's last ten hex digits
		want       time.Duration
	}{
		{"ok/calm-first", "0000000000", 0},
		{"ok/calm-last", "ffffffff00", time.Duration(float64(life) * MinPace * (1 - 1.0/(1<<32)))},
		{"ok/busy-middle", "80000000ff", time.Duration(float64(life) * MaxPace / 2)},
		{"ok/half-busy-last", "ffffffff80", time.Duration(float64(life) * (MinPace + (MaxPace-MinPace)*128/255) * (1 - 1.0/(1<<32)))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serial := "4" + strings.Repeat("a", 29) + tt.tail
			got := base.Sub(PacedRenewalTime(serial, issued, notAfter))
			if d := got - tt.want; d < -time.Second/2 || d > time.Second/2 {
				t.Errorf("renews %v before RenewalTime, want %v", got, tt.want)
			}
		})
	}
	for _, serial := range []string{"", "4a", "zzzzzzzzzz"} {
		if got := PacedRenewalTime(serial, issued, notAfter); !got.Equal(base) {
			t.Errorf("serial %q: %v, want RenewalTime %v", serial, got, base)
		}
	}
}

func TestPaceLevel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		inFlight, capacity int
		want               byte
	}{
		{0, 64, 0}, {8, 64, 127}, {16, 64, 255}, {64, 64, 255}, {100, 64, 255}, {5, 0, 0},
	}
	for _, tt := range tests {
		if got := paceLevel(tt.inFlight, tt.capacity); got != tt.want {
			t.Errorf("paceLevel(%d, %d) = %d, want %d", tt.inFlight, tt.capacity, got, tt.want)
		}
	}
}
