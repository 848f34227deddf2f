package rotor

import (
	"container/heap"
	"encoding/hex"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPacedRenewalTime: the serial's last octet is the load level and the
// four before it the place in the spread, so a calm CA's certificates
// renew within a twelfth of the lifetime before RenewalTime and a busy
// one's within half of it; a serial too short to carry them renews at
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

// TestPaceTail: the tail a placement writes is read back by
// PacedRenewalTime as that place in MaxPace's spread.
func TestPaceTail(t *testing.T) {
	t.Parallel()
	issued := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	life := 24 * time.Hour
	notAfter := issued.Add(life)
	for _, place := range []float64{0, 0.25, 0.5, 0.999, 1} {
		tail := paceTail(place)
		serial := "4" + strings.Repeat("a", 29) + hex.EncodeToString(tail[:])
		got := RenewalTime(issued, notAfter).Sub(PacedRenewalTime(serial, issued, notAfter))
		want := time.Duration(min(place, 1) * MaxPace * float64(life))
		if d := got - want; d < -time.Second || d > time.Second {
			t.Errorf("place %v: renews %v before RenewalTime, want %v", place, got, want)
		}
	}
}

// TestScheduleFlattensStorm simulates a fleet issued all at once and
// renewing for eight lifetimes at renew_after less rotor-agent's jitter
// (up to a tenth of the wait), with the CA's schedule and without it. The
// paced fleet's renewals per minute must stay within 1.5 of their mean
// from the first renewal on; the unpaced one's waves stay steep.
func TestScheduleFlattensStorm(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		paced            bool
		minPeak, maxPeak float64
	}{
		{"paced", true, 1, 1.5},
		{"unpaced", false, 3, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			peakOverMean, perAgent := simulateStorm(t, tt.paced, 20000, time.Hour, 8)
			t.Logf("peak over mean renewals per minute %.2f, %.1f renewals per agent per lifetime", peakOverMean, perAgent)
			if peakOverMean < tt.minPeak || peakOverMean > tt.maxPeak {
				t.Errorf("peak over mean %.2f, want %.1f to %.1f", peakOverMean, tt.minPeak, tt.maxPeak)
			}
			// Pacing must not make agents renew much more often than at
			// RenewalTime (1.5 a lifetime), nor less.
			if perAgent < 1.45 || perAgent > 1.8 {
				t.Errorf("%.2f renewals per agent per lifetime", perAgent)
			}
		})
	}
}

// simulateStorm runs agents issued in the first two seconds, each renewing
// at its renew_after less jitter, for lifetimes lifetimes of life, and
// returns the peak over mean of renewals per minute from the first renewal
// on and the renewals per agent per lifetime.
func simulateStorm(t *testing.T, paced bool, agents int, life time.Duration, lifetimes int) (float64, float64) {
	t.Helper()
	var sched *renewalSchedule
	if paced {
		sched = &renewalSchedule{rand: rand.New(rand.NewPCG(1, 2))}
	}
	jitter := rand.New(rand.NewPCG(3, 4))
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	end := start.Add(time.Duration(lifetimes) * life)
	q := &renewalQueue{}
	for i := range agents {
		heap.Push(q, start.Add(time.Duration(i)*2*time.Second/time.Duration(agents)))
	}
	perMinute := map[int]int{}
	renewals := 0
	for q.Len() > 0 {
		now := heap.Pop(q).(time.Time)
		if now.After(end) {
			break
		}
		if now.Sub(start) > 2*time.Second {
			perMinute[int(now.Sub(start)/time.Minute)]++
			renewals++
		}
		tail := [5]byte{}
		if sched != nil {
			tail = paceTail(sched.place(now, now.Add(life)))
		}
		serial := "4" + strings.Repeat("a", 29) + hex.EncodeToString(tail[:])
		at := PacedRenewalTime(serial, now, now.Add(life))
		heap.Push(q, at.Add(-time.Duration(jitter.Float64()*0.1*float64(at.Sub(now)))))
	}
	firstMinute, lastMinute := math.MaxInt, 0
	for m := range perMinute {
		firstMinute, lastMinute = min(firstMinute, m), max(lastMinute, m)
	}
	if testing.Verbose() {
		for m := firstMinute; m < lastMinute; m += 6 {
			n := 0
			for k := m; k < m+6; k++ {
				n += perMinute[k]
			}
			t.Logf("paced=%v minute %d: %d", paced, m, n/6)
		}
	}
	peak := 0
	for m := firstMinute; m < lastMinute; m++ { // the last minute is cut short
		peak = max(peak, perMinute[m])
	}
	mean := float64(renewals-perMinute[lastMinute]) / float64(lastMinute-firstMinute)
	return float64(peak) / mean, float64(renewals) / float64(agents) / float64(lifetimes)
}

// renewalQueue is a min-heap of renewal times.
type renewalQueue []time.Time

func (q renewalQueue) Len() int           { return len(q) }
func (q renewalQueue) Less(i, j int) bool { return q[i].Before(q[j]) }
func (q renewalQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *renewalQueue) Push(x any)        { *q = append(*q, x.(time.Time)) }
func (q *renewalQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// TestShedPacer: the Retry-After bound doubles each second more callers
// are turned away than served, up to MaxShedRetry, halves each second a
// quarter or fewer are, and is back at MinShedRetry after a quiet second;
// every Retry-After drawn is whole seconds from one to the bound.
func TestShedPacer(t *testing.T) {
	t.Parallel()
	type second struct{ served, turned int }
	tests := []struct {
		name    string
		seconds []second // consecutive, then one more caller turned away
		gap     int64    // quiet seconds before that caller
		want    time.Duration
	}{
		{"ok/calm", []second{{100, 0}, {100, 10}}, 0, MinShedRetry},
		{"ok/storm-doubles", []second{{10, 100}, {10, 100}, {10, 100}}, 0, 8 * MinShedRetry},
		{"ok/storm-capped", slices.Repeat([]second{{1, 1000}}, 20), 0, MaxShedRetry},
		{"ok/storm-half-shed-holds", []second{{10, 100}, {10, 10}}, 0, 2 * MinShedRetry},
		{"ok/storm-eases", []second{{10, 100}, {10, 100}, {100, 20}}, 0, 2 * MinShedRetry},
		{"ok/storm-passed", []second{{10, 100}, {10, 100}}, 2, MinShedRetry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := &shedPacer{rand: rand.New(rand.NewPCG(5, 6))}
			t0 := time.Unix(1_800_000_000, 0)
			for i, s := range tt.seconds {
				now := t0.Add(time.Duration(i) * time.Second)
				for range s.served {
					p.serve(now)
				}
				for range s.turned {
					if ra := p.turnAway(now); ra < time.Second || ra > MaxShedRetry || ra%time.Second != 0 {
						t.Fatalf("Retry-After %v", ra)
					}
				}
			}
			p.turnAway(t0.Add(time.Duration(int64(len(tt.seconds))+tt.gap) * time.Second))
			if p.bound != tt.want {
				t.Errorf("bound %v, want %v", p.bound, tt.want)
			}
		})
	}
}

// TestScheduleForgetsPast: slots that have passed are swept, so the
// schedule of a long-running CA holds only what is still to come.
func TestScheduleForgetsPast(t *testing.T) {
	t.Parallel()
	s := &renewalSchedule{rand: rand.New(rand.NewPCG(7, 8))}
	t0 := time.Unix(1_800_000_000, 0)
	for i := range 1000 {
		now := t0.Add(time.Duration(i) * time.Second)
		s.place(now, now.Add(10*time.Minute))
	}
	// Every renewal asked for lies within ten minutes of its issuance.
	if n := s.len(); n > 10*60+60 {
		t.Errorf("%d slots held, want at most the ten minutes still to come", n)
	}
}
