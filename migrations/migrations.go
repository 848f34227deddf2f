// Package migrations holds Rotor's database schema as golang-migrate SQL
// files, one directory per backend, embedded so the binaries carry their own
// schema. The store package applies them (store.Migrate, or store.Open with
// Options.Migrate).
//
// Both backends keep the same tables and columns, so an operator answers
// "who got what, when" with the same SQL on either:
//
//	SELECT serial, issued_at, not_after, remote_addr FROM issuances
//	WHERE namespace = 'payments' AND service_account = 'api'
//	ORDER BY issued_at DESC;
//
// During a root rotation, the view identity_bundle_status says which live
// identities reported a trust bundle holding the new root (see
// docs/root-rotation.md):
//
//	SELECT holds_root, count(*) FROM identity_bundle_status
//	WHERE root_fingerprint = '<sha-256 of the root, hex>' GROUP BY holds_root;
//
// The tables hold no secret: static tokens are stored as SHA-256 hashes and
// no private key ever reaches the database.
package migrations

import (
	"embed"
	"io/fs"
)

// FS holds postgres/*.sql and sqlite/*.sql.
//
//go:embed postgres/*.sql sqlite/*.sql
var FS embed.FS

// Postgres returns the PostgreSQL migrations, rooted at their directory.
func Postgres() fs.FS { return mustSub("postgres") }

// SQLite returns the SQLite migrations, rooted at their directory.
func SQLite() fs.FS { return mustSub("sqlite") }

func mustSub(dir string) fs.FS {
	sub, err := fs.Sub(FS, dir)
	if err != nil {
		// Unreachable: dir is one of the embedded directories above.
		panic(err)
	}
	return sub
}
