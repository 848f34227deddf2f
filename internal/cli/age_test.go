package cli_test

import (
	"testing"
	"time"

	"github.com/rotor-dev/rotor/internal/cli"
)

func TestAge(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
		str  string
	}{
		{"90d", 90 * 24 * time.Hour, true, "90d"},
		{"1d", 24 * time.Hour, true, "1d"},
		{"36h", 36 * time.Hour, true, "36h0m0s"},
		{"48h", 48 * time.Hour, true, "2d"},
		{"0d", 0, true, "0s"},
		{"-3d", 0, false, ""},
		{"1.5d", 0, false, ""},
		{"d", 0, false, ""},
		{"90 days", 0, false, ""},
		{"99999999d", 0, false, ""},
		{"", 0, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var a cli.Age
			err := a.Set(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("Set(%q): %v, want ok %v", tt.in, err, tt.ok)
			}
			if !tt.ok {
				return
			}
			if got := a.Get().(time.Duration); got != tt.want || a.String() != tt.str {
				t.Fatalf("Set(%q) = %v (%q), want %v (%q)", tt.in, got, a.String(), tt.want, tt.str)
			}
		})
	}
}
