package rotor

import (
	"math/rand/v2"
	"strconv"
	"sync"
	"time"
)

// Pacing. A fleet started together (a cluster's first boot, a region
// failing over) is issued together, and would renew together every
// lifetime after, each wave as steep as the first. So the CA keeps a
// schedule of the renewals it has asked for, and places each new
// certificate's renew_after where that schedule is emptiest: somewhere in
// the last MaxPace of the lifetime before RenewalTime (a sixth to two
// thirds of the way), preferring the last MinPace before it when that is
// no fuller. A calm CA's certificates renew where they always did, about
// RenewalTime; a storm's are laid out flat over half their lifetime,
// within 1.3 of the rate the fleet settles at, and their next renewals
// fill the gaps, so the rate is flat from the first renewal on
// (TestScheduleFlattensStorm).
//
// The place lives in the serial's last five octets (the other fifteen
// stay random, 119 bits), so the record itself says when its holder
// should renew, on every replica and for renewal-info, without a column:
// the last octet is the spread (0..255 from MinPace to MaxPace) and the
// four before it the holder's place in it. Each replica schedules only
// what it issues; behind a balancer that spreads load evenly their sum is
// as flat as each. A restarted CA starts with an empty schedule and so
// places its first certificates late, as a calm CA would.
const (
	MinPace = 1.0 / 12
	MaxPace = 1.0 / 2
)

// PacedRenewalTime is when the holder of the certificate with serial
// (lowercase hex, as Issuance.Serial) should renew: RenewalTime moved
// earlier by its place in the spread the serial carries, to the second.
func PacedRenewalTime(serial string, issuedAt, notAfter time.Time) time.Time {
	at := RenewalTime(issuedAt, notAfter)
	if len(serial) < 10 {
		return at
	}
	v, err := strconv.ParseUint(serial[len(serial)-10:], 16, 64)
	if err != nil {
		return at
	}
	level, place := float64(v&0xff)/255, float64(v>>8)/(1<<32)
	spread := MinPace + (MaxPace-MinPace)*level
	// Whole seconds, as the API and renewal-info windows carry them.
	return at.Add(-time.Duration(place * spread * float64(notAfter.Sub(issuedAt)))).Round(time.Second)
}

// paceTail is the serial's last five octets for a place in MaxPace's
// spread (0 at RenewalTime, towards 1 half the lifetime before).
func paceTail(place float64) [5]byte {
	p := uint32(min(place, 1-1.0/(1<<32)) * (1 << 32))
	return [5]byte{byte(p >> 24), byte(p >> 16), byte(p >> 8), byte(p), 0xff}
}

// Placement parameters.
const (
	// scheduleSlots is about how many slots a lifetime is cut into: slots
	// are a power of two seconds wide, at least one, so a day-long
	// certificate's renewals are counted in 32-second slots and a
	// ten-minute one's in seconds.
	scheduleSlots = 2048
	// scheduleChoices is how many places are looked at in each of the two
	// windows: picking the emptiest of a few random ones flattens a
	// schedule almost as well as searching it all, at constant cost.
	scheduleChoices = 4
	// scheduleSweep is how often, at most, slots that have passed are
	// forgotten.
	scheduleSweep = time.Minute
)

// renewalSchedule counts, per slot of time, the renewals this CA has
// asked for. Safe for concurrent use.
type renewalSchedule struct {
	mu    sync.Mutex
	rand  *rand.Rand // nil: seeded at first use
	slots map[slotKey]uint32
	swept time.Time
}

// slotKey is a slot: its width as a power of two seconds, and its index
// (Unix seconds shifted by the width).
type slotKey struct {
	shift uint8
	index int64
}

// place picks where in MaxPace's spread the holder of a certificate issued
// at now and expiring at notAfter should renew, and counts it in.
func (s *renewalSchedule) place(now, notAfter time.Time) float64 {
	life := notAfter.Sub(now)
	if life <= 0 {
		return 0
	}
	shift := uint8(0)
	for time.Duration(2<<shift)*time.Second*scheduleSlots <= life && shift < 62 {
		shift++
	}
	base := RenewalTime(now, notAfter)
	spread := MaxPace * float64(life)
	keyOf := func(place float64) slotKey {
		return slotKey{shift, base.Add(-time.Duration(place*spread)).Unix() >> shift}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.slots == nil {
		s.slots = make(map[slotKey]uint32)
	}
	if s.rand == nil {
		s.rand = newRand()
	}
	s.sweep(now)
	// The emptiest of a few places in the last MinPace before
	// RenewalTime, and of a few anywhere in the spread; the later one
	// unless the earlier is emptier.
	narrow, nCount := s.emptiest(keyOf, MinPace/MaxPace)
	wide, wCount := s.emptiest(keyOf, 1)
	place := narrow
	if wCount < nCount {
		place = wide
	}
	s.slots[keyOf(place)]++
	return place
}

// emptiest draws scheduleChoices places in [0, upTo) and returns the one
// whose slot holds the fewest renewals, with that count. s.mu must be held.
func (s *renewalSchedule) emptiest(keyOf func(float64) slotKey, upTo float64) (float64, uint32) {
	best, bestCount := 0.0, ^uint32(0)
	for range scheduleChoices {
		p := s.rand.Float64() * upTo
		if n := s.slots[keyOf(p)]; n < bestCount {
			best, bestCount = p, n
		}
	}
	return best, bestCount
}

// sweep forgets the slots that have passed, at most once a scheduleSweep.
// s.mu must be held.
func (s *renewalSchedule) sweep(now time.Time) {
	if now.Sub(s.swept) < scheduleSweep {
		return
	}
	s.swept = now
	sec := now.Unix()
	for k := range s.slots {
		if (k.index+1)<<k.shift <= sec {
			delete(s.slots, k)
		}
	}
}

// len is how many slots hold renewals.
func (s *renewalSchedule) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.slots)
}

// Shedding. A CA at its in-flight cap turns callers away with 503 and a
// Retry-After. Told to come back within a few seconds, a fleet many times
// the CA's capacity would come back at once and keep it busy refusing
// (every refusal costs a TLS handshake), so the Retry-After grows while
// the CA turns away more callers than it serves and shrinks when it
// serves them all, and each is drawn uniformly up to that bound so the
// callers come back spread over it.
const (
	// MinShedRetry is the smallest bound: a passing spike's callers come
	// back within one to three seconds.
	MinShedRetry = 3 * time.Second
	// MaxShedRetry is the largest: a fleet of a hundred thousand first
	// certificates at a few hundred a second is served within it. Agents
	// renewing cut the wait to what their certificate can afford.
	MaxShedRetry = 5 * time.Minute
)

// shedPacer tracks, per second, the callers served and turned away, and
// the Retry-After bound they set. Safe for concurrent use.
type shedPacer struct {
	mu             sync.Mutex
	rand           *rand.Rand // nil: seeded at first use
	second         int64
	served, turned int
	bound          time.Duration
}

// serve counts a caller admitted at now.
func (p *shedPacer) serve(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.roll(now)
	p.served++
}

// turnAway counts a caller shed at now and returns its Retry-After: whole
// seconds, uniform from one to the bound.
func (p *shedPacer) turnAway(now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.roll(now)
	p.turned++
	if p.rand == nil {
		p.rand = newRand()
	}
	return time.Duration(1+p.rand.Int64N(int64(p.bound/time.Second))) * time.Second
}

// roll starts a new second, first moving the bound by the last one: doubled
// when more were turned away than served, halved when a quarter or fewer
// were. After a second with no callers at all the storm has passed, and
// the bound is back at its smallest. p.mu must be held.
func (p *shedPacer) roll(now time.Time) {
	if p.bound == 0 {
		p.bound = MinShedRetry
	}
	sec := now.Unix()
	if sec == p.second {
		return
	}
	switch {
	case p.turned > p.served:
		p.bound = min(2*p.bound, MaxShedRetry)
	case p.turned*4 <= p.served:
		p.bound = max(p.bound/2, MinShedRetry)
	}
	if sec != p.second+1 {
		p.bound = MinShedRetry
	}
	p.second, p.served, p.turned = sec, 0, 0
}

// newRand is a generator for placements and waits, seeded from the
// runtime's: they need spreading, not secrecy.
func newRand() *rand.Rand { return rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())) }
