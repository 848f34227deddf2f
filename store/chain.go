package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash"
	"strconv"
	"time"

	"github.com/rotor-dev/rotor"
)

// The audit chain. Every audited row (an issuance, refusal, refusal
// summary, revocation or admin action) has a place in one chain per store,
// chain_seq 1, 2, 3, ..., and chain_hash:
//
//	chain_hash(n) = SHA-256("rotor audit chain v1\n" || chain_hash(n-1) || uint64be(n) || digest(row n))
//
// with chain_hash(0) 32 zero bytes (or the base a prune left). A row's
// digest is SHA-256 over its kind and its columns, each length-prefixed, in
// the order the digest functions below write them; times are RFC 3339 UTC
// with microseconds, the precision both databases keep, so a digest
// recomputed from the row read back equals the one written. Editing a row
// changes its digest; deleting, inserting or reordering rows breaks the
// links; recomputing the whole chain changes the head, which a signed
// checkpoint kept elsewhere then no longer matches.

const chainDomain = "rotor audit chain v1\n"

// Row kinds, as digests and verification messages name them: the table.
const (
	kindIssuance   = "issuances"
	kindRefusal    = "refusals"
	kindSummary    = "refusal_summaries"
	kindRevocation = "revoked_certificates"
	kindAction     = "admin_action_log"
)

// chainKinds are the chained tables, in the order verification reads them.
var chainKinds = []string{kindIssuance, kindRefusal, kindSummary, kindRevocation, kindAction}

// legacyKinds are the chained tables with the key that finds a row and the
// order sealLegacy gives rows without a place their places in: rows from
// before the chain existed (issuances, refusals and summaries), or any row
// if the chain was reset, since sealing is what anyone recomputing the
// chain would do.
var legacyKinds = []struct {
	kind, key, order string
	numericKey       bool
}{
	{kindIssuance, "serial", "issued_at, serial", false},
	{kindRefusal, "id", "id", true},
	{kindSummary, "id", "id", true},
	{kindRevocation, "serial", "revoked_at, serial", false},
	{kindAction, "id", "id", true},
}

// sealBatch bounds the rows one sealing transaction gives places to.
const sealBatch = 5000

type digest = [sha256.Size]byte

// chainHead is the chain's last place and hash, as locked by a writer.
type chainHead struct {
	seq  int64
	hash []byte
}

// link appends a row with digest d and returns its place and hash.
func (h *chainHead) link(d digest) (int64, []byte) {
	h.seq++
	h.hash = linkHash(h.hash, h.seq, d)
	return h.seq, h.hash
}

func linkHash(prev []byte, seq int64, d digest) []byte {
	m := sha256.New()
	m.Write([]byte(chainDomain))
	m.Write(prev)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(seq))
	m.Write(n[:])
	m.Write(d[:])
	return m.Sum(nil)
}

// rowDigest writes length-prefixed fields into one SHA-256.
type rowDigest struct{ h hash.Hash }

func newRowDigest(kind string) rowDigest {
	d := rowDigest{sha256.New()}
	return d.str(kind)
}

func (d rowDigest) bytes(b []byte) rowDigest {
	var n [binary.MaxVarintLen64]byte
	d.h.Write(n[:binary.PutUvarint(n[:], uint64(len(b)))])
	d.h.Write(b)
	return d
}

func (d rowDigest) str(s string) rowDigest     { return d.bytes([]byte(s)) }
func (d rowDigest) int(i int64) rowDigest      { return d.str(strconv.FormatInt(i, 10)) }
func (d rowDigest) time(t time.Time) rowDigest { return d.str(utc(t).Format(time.RFC3339Nano)) }

func (d rowDigest) sum() (out digest) {
	d.h.Sum(out[:0])
	return out
}

func issuanceDigest(i *rotor.Issuance) digest {
	d := newRowDigest(kindIssuance).str(i.Serial).str(i.Identity.Namespace).str(i.Identity.ServiceAccount).
		int(int64(len(i.SANs)))
	for _, s := range i.SANs {
		d = d.str(s)
	}
	return d.str(i.KeyAlgorithm).int(int64(i.KeySize)).str(i.PublicKeySHA256).str(i.CSRSHA256).
		time(i.NotBefore).time(i.NotAfter).time(i.IssuedAt).str(i.IssuerKeyID).str(i.Authenticator).
		str(i.TokenSubject).str(i.RemoteAddr).str(i.BundleFingerprint).bytes(i.Certificate).str(i.Credential).sum()
}

func refusalDigest(r *rotor.Refusal) digest {
	return newRowDigest(kindRefusal).time(r.Time).str(string(r.Reason)).str(r.Detail).
		str(r.Identity.Namespace).str(r.Identity.ServiceAccount).str(r.Authenticator).str(r.RemoteAddr).sum()
}

// summaryDigest takes the reasons as a map: PostgreSQL's jsonb does not
// keep the JSON text it was given, so the digest covers the canonical
// encoding (sorted keys) of what it holds.
func summaryDigest(s *rotor.RefusalSummary) digest {
	reasons, _ := json.Marshal(s.Reasons) // a map[ErrorCode]int cannot fail to marshal
	return newRowDigest(kindSummary).str(s.Source).time(s.First).time(s.Last).int(int64(s.Count)).
		bytes(reasons).sum()
}

// revocationDigest takes the reason's name as stored beside its code.
func revocationDigest(r *rotor.Revocation, reasonName string) digest {
	return newRowDigest(kindRevocation).str(r.Serial).time(r.Time).str(reasonName).
		int(int64(r.Reason)).str(r.Actor).str(r.Comment).sum()
}

func actionDigest(a *rotor.AdminAction) digest {
	return newRowDigest(kindAction).time(a.Time).str(a.Actor.Name).str(a.Actor.Kind).str(a.Actor.RemoteAddr).
		str(a.Action).str(a.Target).str(a.Reason).str(a.Detail).sum()
}

// rowCursor is what pgx.Rows and *sql.Rows share.
type rowCursor interface {
	Next() bool
	Err() error
}

// eachRow scans every row of rows and hands it to fn.
func eachRow[R rowCursor](rows R, scan func(R) (chainRow, error), fn func(chainRow) error) error {
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return fmt.Errorf("read audit rows: %w", err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read audit rows: %w", err)
	}
	return nil
}

// sealLegacy gives the rows written before the chain existed their places,
// one bounded batch per transaction, until batch reports the chain sealed:
// from then on a row without a place is one inserted behind the CA's back.
func sealLegacy(ctx context.Context, batch func(context.Context) (bool, error), unavailable func(error) error) error {
	for {
		done, err := batch(ctx)
		if err != nil {
			return unavailable(fmt.Errorf("seal the audit rows written before the chain: %w", err))
		}
		if done {
			return nil
		}
	}
}
