package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/rotor-dev/rotor"
)

// BundleRecorder remembers which roots a trust bundle holds, so that the
// bundle fingerprints agents report with their issuances can be matched to
// roots. The CA records every bundle it serves, at start and on reload.
//
// RecordBundle is safe for concurrent use and idempotent: recording a bundle
// again keeps its first time. It returns EStoreUnavailable when the store
// cannot commit.
type BundleRecorder interface {
	RecordBundle(ctx context.Context, b *rotor.Bundle, at time.Time) error
}

// RootReporter says how far a root has reached the fleet: the signal that a
// root rotation may switch its issuer.
//
// RootStatus takes the root's SHA-256 fingerprint (64 lowercase hex digits,
// see RootFingerprint); anything else is EInvalid. It is safe for concurrent
// use and returns EStoreUnavailable when the store cannot answer. "Live"
// means not expired by the database's clock.
type RootReporter interface {
	RootStatus(ctx context.Context, root string) (*RootStatus, error)
}

// RootStatus is how many live identities and certificates were issued to
// holders of a bundle containing one root.
type RootStatus struct {
	Root string // the fingerprint asked about
	// Served reports whether any bundle the CA recorded holds the root. A
	// root never served cannot have reached anyone.
	Served bool
	// Identities lists every identity with a live certificate, with its
	// newest issuance, ordered by namespace and service account.
	Identities []IdentityRoot
	// LiveCertificates counts unexpired issuances; WithoutRoot those whose
	// holder reported a bundle without the root (or no bundle), and
	// WithoutRootUntil is when the last of them expires (zero if none).
	// With several replicas per identity, only these say that every
	// replica holds the root: a replica that has not renewed since the
	// root was added still has such a certificate.
	LiveCertificates, WithoutRoot int
	WithoutRootUntil              time.Time
}

// IdentityRoot is one live identity's newest issuance and whether the
// bundle reported with it holds the root.
type IdentityRoot struct {
	Identity          rotor.Identity
	Serial            string
	IssuedAt          time.Time
	BundleFingerprint string // "" if the client reported none
	HoldsRoot         bool
}

// Holding counts the live identities whose newest certificate went to a
// holder of the root.
func (s *RootStatus) Holding() int { return len(s.Identities) - len(s.Missing()) }

// Missing lists the live identities whose newest certificate went to a
// holder of a bundle without the root.
func (s *RootStatus) Missing() []IdentityRoot {
	var m []IdentityRoot
	for _, id := range s.Identities {
		if !id.HoldsRoot {
			m = append(m, id)
		}
	}
	return m
}

// Complete reports whether the CA serves the root and every live
// certificate went to a holder of it, so a certificate chained to it will
// be trusted by every peer.
func (s *RootStatus) Complete() bool { return s.Served && s.WithoutRoot == 0 }

// RootFingerprint is the SHA-256 of a root certificate's DER, lowercase hex:
// the form bundle_roots and RootStatus use.
func RootFingerprint(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// checkFingerprint refuses anything but 64 lowercase hex digits.
func checkFingerprint(fp string) error {
	if len(fp) != 64 || !isSerial(fp) {
		return rotor.Errorf(rotor.EInvalid, "root fingerprint must be 64 lowercase hex digits (SHA-256)")
	}
	return nil
}

// bundleRow is one row of bundle_roots.
type bundleRow struct {
	bundle, root, subject string
	notAfter              time.Time
}

func bundleRows(b *rotor.Bundle) []bundleRow {
	rows := make([]bundleRow, 0, len(b.Roots))
	for _, r := range b.Roots {
		rows = append(rows, bundleRow{bundle: b.Fingerprint, root: RootFingerprint(r.Raw),
			subject: r.Subject.String(), notAfter: r.NotAfter})
	}
	return rows
}

// rootIdentitiesSQL lists live identities and whether their newest
// issuance's bundle holds root $1; both backends run it as is.
const rootIdentitiesSQL = `SELECT l.namespace, l.service_account, l.serial, l.issued_at,
	l.bundle_fingerprint, l.bundle_fingerprint IN (` + bundlesWithRootSQL + `)
	FROM live_identities l ORDER BY l.namespace, l.service_account`

// bundlesWithRootSQL lists the bundles holding root $1: one hashed set per
// query, rather than a lookup per row.
const bundlesWithRootSQL = `SELECT bundle_fingerprint FROM bundle_roots WHERE root_fingerprint = $1`

// rootCertificatesSQL counts live certificates and those issued without
// root $1; now is the backend's current-time expression, the one its
// live_identities view uses.
func rootCertificatesSQL(now string) string {
	return `SELECT EXISTS (` + bundlesWithRootSQL + `),
	count(*), count(*) FILTER (WHERE NOT held), max(not_after) FILTER (WHERE NOT held)
	FROM (SELECT i.not_after, i.bundle_fingerprint IN (` + bundlesWithRootSQL + `) AS held
		FROM issuances i WHERE i.not_after > ` + now + `) live`
}

const insertBundleRootSQL = `INSERT INTO bundle_roots (bundle_fingerprint, root_fingerprint,
	root_subject, root_not_after, first_served_at) VALUES ($1, $2, $3, $4, $5)
	ON CONFLICT DO NOTHING`
