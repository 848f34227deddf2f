package fleet

import (
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/bench/load"
	"github.com/rotor-dev/rotor/client"
)

// Stats is what a fleet saw. Its exported fields are read after Run.
type Stats struct {
	mu sync.Mutex
	// PerSecond[i] counts certificates received in second i of the run
	// (first ones and renewals), the storm's histogram.
	PerSecond []int `json:"per_second"`
	// RenewalsPerSecond[i] counts the renewals among them: every
	// certificate after an agent's first.
	RenewalsPerSecond []int `json:"renewals_per_second"`
	// BegunPerSecond[i] counts the renewals agents set out to make in
	// second i (their renewal time came; retries not counted): the demand
	// that pacing shapes, before the CA's queue and shedding reshape it.
	BegunPerSecond []int `json:"begun_per_second"`
	// First are certificates got by token, Renewals those got over mTLS.
	First    int `json:"first"`
	Renewals int `json:"renewals"`
	// Reissued are certificates an agent got by token after its first,
	// because its certificate had run out (while a request queued).
	Reissued int `json:"reissued"`
	// Expired counts mTLS renewals refused because the certificate ran out
	// while the request queued; the agent then renewed by token at once.
	Expired int `json:"expired_in_queue"`
	// Shed counts refusals the agents waited out (Retry-After) by code:
	// the CA shedding load (503 overloaded, 429 rate limited) as designed.
	Shed map[rotor.ErrorCode]int `json:"shed"`
	// Errors counts every other failure by code; the target is none.
	Errors map[rotor.ErrorCode]int `json:"errors"`
	// ErrorSamples are the first few errors' texts, each with the second
	// of the run it came in, to tell timeouts from refusals and resets.
	ErrorSamples []string `json:"error_samples,omitempty"`
	// Peak and Mean are certificates per second over the run's seconds;
	// PeakOverMean is their ratio, 1 for a flat rate.
	Peak         int     `json:"peak_per_s"`
	Mean         float64 `json:"mean_per_s"`
	PeakOverMean float64 `json:"peak_over_mean"`
	// RenewalPeak, RenewalMean and RenewalPeakOverMean are the same of
	// renewals per second, from the first second with a renewal to the
	// last whole second: the rate pacing is to flatten.
	RenewalPeak         int     `json:"renewal_peak_per_s"`
	RenewalMean         float64 `json:"renewal_mean_per_s"`
	RenewalPeakOverMean float64 `json:"renewal_peak_over_mean"`
	// RenewalPeak10sOverMean is the busiest ten seconds' renewal rate
	// over the mean: a one-second catch-up after a stall smoothed out.
	RenewalPeak10sOverMean float64 `json:"renewal_peak_10s_over_mean"`
	// BegunPeak, BegunMean and BegunPeakOverMean are the same of
	// BegunPerSecond.
	BegunPeak         int     `json:"begun_peak_per_s"`
	BegunMean         float64 `json:"begun_mean_per_s"`
	BegunPeakOverMean float64 `json:"begun_peak_over_mean"`
	// P50 and P99 are the latency of the requests that got a certificate.
	P50     time.Duration `json:"p50_ns"`
	P99     time.Duration `json:"p99_ns"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// Serials are every certificate received (lowercase hex, from the
	// leaf itself), to check each against its audit row.
	Serials   []string        `json:"-"`
	latencies []time.Duration // of every certificate received
}

func newStats() *Stats {
	return &Stats{Shed: map[rotor.ErrorCode]int{}, Errors: map[rotor.ErrorCode]int{}}
}

// begin records a renewal set out on at offset since the run began.
func (s *Stats) begin(offset time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := int(offset / time.Second)
	for len(s.BegunPerSecond) <= sec {
		s.BegunPerSecond = append(s.BegunPerSecond, 0)
	}
	s.BegunPerSecond[sec]++
}

// maxErrorSamples bounds Stats.ErrorSamples.
const maxErrorSamples = 20

// kind is what a request was for.
type kind int

const (
	first    kind = iota // an agent's first certificate, by token
	renewed              // a renewal over mTLS
	reissued             // a renewal by token: the certificate had run out
)

// note records one answer, at offset since the run began.
func (s *Stats) note(offset, lat time.Duration, k kind, got *client.Issued, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		switch code := rotor.ErrorCodeOf(err); {
		case code == rotor.EOverloaded || code == rotor.ERateLimited:
			s.Shed[code]++
		case code == rotor.EUnauthenticated && k == renewed:
			s.Expired++
		default:
			s.Errors[code]++
			if len(s.ErrorSamples) < maxErrorSamples {
				s.ErrorSamples = append(s.ErrorSamples, fmt.Sprintf("%ds: %v", int(offset/time.Second), err))
			}
		}
		return
	}
	sec := int(offset / time.Second)
	for len(s.PerSecond) <= sec {
		s.PerSecond = append(s.PerSecond, 0)
		s.RenewalsPerSecond = append(s.RenewalsPerSecond, 0)
	}
	s.PerSecond[sec]++
	switch k {
	case first:
		s.First++
	case renewed:
		s.Renewals++
	case reissued:
		s.Reissued++
	}
	if k != first {
		s.RenewalsPerSecond[sec]++
	}
	s.latencies = append(s.latencies, lat)
	s.Serials = append(s.Serials, hex.EncodeToString(got.Leaf.SerialNumber.Bytes()))
}

// finish computes the summary figures once every agent has stopped.
func (s *Stats) finish(elapsed time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Elapsed = elapsed
	slices.Sort(s.latencies)
	s.P50, s.P99 = load.Percentile(s.latencies, 0.50), load.Percentile(s.latencies, 0.99)
	if len(s.PerSecond) == 0 {
		return
	}
	s.Peak = slices.Max(s.PerSecond)
	s.Mean = float64(s.First+s.Renewals+s.Reissued) / float64(len(s.PerSecond))
	s.PeakOverMean = float64(s.Peak) / s.Mean
	s.RenewalPeak, s.RenewalMean, s.RenewalPeakOverMean = flatness(s.RenewalsPerSecond, 1)
	_, _, s.RenewalPeak10sOverMean = flatness(s.RenewalsPerSecond, 10)
	s.BegunPeak, s.BegunMean, s.BegunPeakOverMean = flatness(s.BegunPerSecond, 1)
}

// flatness is the busiest n seconds' count (per second), the mean per
// second and their ratio, from the first second with any count to the
// last whole one (the run's end cuts the last short). All zero when fewer
// than n seconds have passed since the first.
func flatness(perSec []int, n int) (peak int, mean, peakOverMean float64) {
	from := slices.IndexFunc(perSec, func(v int) bool { return v > 0 })
	if from < 0 || len(perSec)-1-from < n {
		return 0, 0, 0
	}
	whole := perSec[from : len(perSec)-1]
	sum, window, busiest := 0, 0, 0
	for i, v := range whole {
		sum, window = sum+v, window+v
		if i >= n {
			window -= whole[i-n]
		}
		busiest = max(busiest, window)
	}
	mean = float64(sum) / float64(len(whole))
	return busiest / n, mean, float64(busiest) / float64(n) / mean
}

// ErrorCount is how many requests failed other than by shedding.
func (s *Stats) ErrorCount() int {
	n := 0
	for _, v := range s.Errors {
		n += v
	}
	return n
}
