package rotor

import (
	"strconv"
	"time"
)

// Pacing. A fleet started together (a cluster's first boot, a region
// failing over) is issued together, and would renew together every
// lifetime after. So the CA spreads each certificate's renew_after
// backwards from RenewShare by a share of the lifetime that grows with its
// own load when it issued it: at most MinPace when it is idle, up to
// MaxPace (renew anywhere from a third to two thirds of the way) when it
// is at a quarter or more of its in-flight capacity. A storm's
// certificates come back spread over a third of their lifetime, which the
// next issuances, made at a calm CA, keep; a calm CA's certificates renew
// almost where they always did.
//
// Both the load and the place in the spread live in the serial's last
// five octets (the other fifteen stay random, 119 bits), so the record
// itself says when its holder should renew, on every replica and for
// renewal-info, without a column: the last octet is the load level
// (0..255) and the four before it the holder's place in the spread.
const (
	MinPace = 1.0 / 12
	MaxPace = 1.0 / 3
)

// paceLevel is the load level of an issuance: in-flight issuances as a
// share of a quarter of the cap, 0..255.
func paceLevel(inFlight, capacity int) byte {
	if capacity <= 0 {
		return 0
	}
	return byte(min(255, inFlight*4*255/capacity))
}

// PacedRenewalTime is when the holder of the certificate with serial
// (lowercase hex, as Issuance.Serial) should renew: RenewalTime moved
// earlier by its place in the spread its load level gives, to the second.
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
