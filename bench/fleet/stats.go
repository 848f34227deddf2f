package fleet

import (
	"encoding/hex"
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
	// First are certificates got by token, Renewals those got over mTLS.
	First    int `json:"first"`
	Renewals int `json:"renewals"`
	// Shed counts refusals the agents waited out (Retry-After) by code:
	// the CA shedding load (503 overloaded, 429 rate limited) as designed.
	Shed map[rotor.ErrorCode]int `json:"shed"`
	// Errors counts every other failure by code; the target is none.
	Errors map[rotor.ErrorCode]int `json:"errors"`
	// Peak and Mean are certificates per second over the run's seconds;
	// PeakOverMean is their ratio, 1 for a flat rate.
	Peak         int     `json:"peak_per_s"`
	Mean         float64 `json:"mean_per_s"`
	PeakOverMean float64 `json:"peak_over_mean"`
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

// note records one answer, at offset since the run began.
func (s *Stats) note(offset, lat time.Duration, renewal bool, got *client.Issued, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		code := rotor.ErrorCodeOf(err)
		if code == rotor.EOverloaded || code == rotor.ERateLimited {
			s.Shed[code]++
		} else {
			s.Errors[code]++
		}
		return
	}
	sec := int(offset / time.Second)
	for len(s.PerSecond) <= sec {
		s.PerSecond = append(s.PerSecond, 0)
	}
	s.PerSecond[sec]++
	if renewal {
		s.Renewals++
	} else {
		s.First++
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
	s.Mean = float64(s.First+s.Renewals) / float64(len(s.PerSecond))
	s.PeakOverMean = float64(s.Peak) / s.Mean
}

// ErrorCount is how many requests failed other than by shedding.
func (s *Stats) ErrorCount() int {
	n := 0
	for _, v := range s.Errors {
		n += v
	}
	return n
}
