package store

import (
	"fmt"
	"io"
	"time"

	"github.com/rotor-dev/rotor"
)

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

// WriteReport writes s as key=value lines an operator reads and a script
// can grep (`rotor-ca roots status`): subject names the root if known, and
// at most show identities missing it are listed.
func (s *RootStatus) WriteReport(w io.Writer, subject string, show int) error {
	served := "no (add it to --trust-bundle first: nothing can hold it yet)"
	if s.Served {
		served = "yes"
	}
	p := &errWriter{w: w}
	p.printf("root=%s", s.Root)
	if subject != "" {
		p.printf(" subject=%q", subject)
	}
	p.printf("\nserved=%s\n", served)
	missing := s.Missing()
	p.printf("live_identities=%d holding_new_root=%d missing=%d\n", len(s.Identities), s.Holding(), len(missing))
	p.printf("live_certificates=%d without_root=%d", s.LiveCertificates, s.WithoutRoot)
	if !s.WithoutRootUntil.IsZero() {
		p.printf(" last_without_root_expires=%s", s.WithoutRootUntil.UTC().Format(time.RFC3339))
	}
	p.printf("\n")
	for i, id := range missing {
		if i == show {
			p.printf("... and %d more\n", len(missing)-show)
			break
		}
		bundle := id.BundleFingerprint
		if bundle == "" {
			bundle = "none-reported"
		}
		p.printf("missing %s serial=%s issued_at=%s bundle=%s\n", id.Identity, id.Serial,
			id.IssuedAt.UTC().Format(time.RFC3339), bundle)
	}
	ready := "no"
	if s.Complete() {
		ready = "yes"
	}
	p.printf("ready=%s\n", ready)
	return p.err
}

// errWriter keeps the first write error, so a run of prints checks once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

// Complete reports whether the CA serves the root and every live
// certificate went to a holder of it, so a certificate chained to it will
// be trusted by every peer.
func (s *RootStatus) Complete() bool { return s.Served && s.WithoutRoot == 0 }

// bundleRow is one row of bundle_roots.
type bundleRow struct {
	bundle, root, subject string
	notAfter              time.Time
}

func bundleRows(b *rotor.Bundle) []bundleRow {
	rows := make([]bundleRow, 0, len(b.Roots))
	for _, r := range b.Roots {
		rows = append(rows, bundleRow{bundle: b.Fingerprint, root: rotor.Fingerprint(r.Raw),
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
