package store

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rotor-dev/rotor"
)

// Pruning deletes the oldest stretch of the audit chain: from its base up
// to the last place before the first row that must stay. Deleting only a
// prefix keeps the rest verifiable: the chain's base (audit_chain.base_seq
// and base_hash) moves to the last place deleted, and verification starts
// there, so audit verify and any checkpoint newer than the base still
// pass. Each batch is one short transaction that takes the chain's lock,
// checks the stretch it deletes still verifies (a prune never deletes the
// evidence of an edit), deletes it and moves the base.

// PruneOptions shape a Prune.
type PruneOptions struct {
	// Batch bounds the chain places one transaction deletes; zero means
	// 1000.
	Batch int
	// DryRun counts what would go and deletes nothing.
	DryRun bool
	// Action is who prunes and why; Prune fills in its Action, Target and
	// Detail and commits it with the first batch.
	Action rotor.AdminAction
}

// PruneResult is what Prune deleted, or would delete.
type PruneResult struct {
	// Rows counts the rows by table: issuances, refusals,
	// refusal_summaries, revoked_certificates, admin_action_log.
	Rows map[string]int64
	// From and To are the chain places deleted, From+1 to To; To == From
	// when nothing was.
	From, To int64
	// Batches is how many transactions it took.
	Batches int
}

// Total is the number of rows.
func (r *PruneResult) Total() (n int64) {
	for _, c := range r.Rows {
		n += c
	}
	return n
}

// Describe is the result as one line for a person and the audit.
func (r *PruneResult) Describe() string {
	var parts []string
	for _, kind := range chainKinds {
		parts = append(parts, fmt.Sprintf("%d %s", r.Rows[kind], kind))
	}
	return strings.Join(parts, ", ")
}

// pruneEligible is, per chained table, the SQL condition a row must meet to
// be pruned, with :before standing for the cutoff: certificates expired
// before it (with their revocations, since a CRL lists a certificate only
// until it expires), refusals, summaries and admin actions older than it.
var pruneEligible = map[string]string{
	kindIssuance: `not_after < :before`,
	kindRefusal:  `time < :before`,
	kindSummary:  `last_time < :before`,
	kindRevocation: `revoked_at < :before AND NOT EXISTS (SELECT 1 FROM issuances i
		WHERE i.serial = revoked_certificates.serial AND i.not_after >= :before)`,
	kindAction: `time < :before`,
}

// pruneBackend is what each database implements for Prune.
type pruneBackend interface {
	// pruneRange is the chain's base and the last place of the prunable
	// prefix: one before the first row after the base that is not
	// eligible, or the head.
	pruneRange(ctx context.Context, before time.Time) (base, end int64, err error)
	// pruneCount counts the rows of each table at places from+1 to to.
	pruneCount(ctx context.Context, from, to int64) (map[string]int64, error)
	// pruneBatch, under the chain's lock, checks the base is still from,
	// that places from+1 to to verify, deletes them, moves the base to to
	// and, if a is set, records a; it returns the rows deleted by table.
	pruneBatch(ctx context.Context, from, to int64, a *rotor.AdminAction) (map[string]int64, error)
}

// Prune deletes the audit rows no longer needed from before back, as the
// package comment above says. Other writers wait for at most one batch.
func (s *Store) Prune(ctx context.Context, before time.Time, o PruneOptions) (*PruneResult, error) {
	if o.Batch <= 0 {
		o.Batch = 1000
	}
	base, end, err := s.b.pruneRange(ctx, before)
	if err != nil {
		return nil, err
	}
	res := &PruneResult{From: base, To: base, Rows: map[string]int64{}}
	if end <= base {
		return res, nil
	}
	if res.Rows, err = s.b.pruneCount(ctx, base, end); err != nil {
		return nil, err
	}
	res.To = end
	if o.DryRun {
		return res, nil
	}
	a := o.Action
	a.Action, a.Target = rotor.ActionPrune, fmt.Sprintf("audit chain places %d-%d", base+1, end)
	a.Detail = fmt.Sprintf("rows older than %s: %s", utc(before).Format(time.RFC3339), res.Describe())
	action := &a
	deleted := map[string]int64{}
	for from := base; from < end; from += int64(o.Batch) {
		to := min(from+int64(o.Batch), end)
		n, err := s.b.pruneBatch(ctx, from, to, action)
		if err != nil {
			return nil, fmt.Errorf("prune audit chain places %d-%d (%d batches done): %w", from+1, to, res.Batches, err)
		}
		for kind, c := range n {
			deleted[kind] += c
		}
		action = nil
		res.Batches++
	}
	res.Rows = deleted
	return res, nil
}

// checkPrunable checks that rows, read from places from+1 to to, are
// exactly those places, each once, and that each links to the one before
// from base, the chain's hash at from. It returns the hash at to.
func checkPrunable(from, to int64, base []byte, rows []chainRow) ([]byte, error) {
	byPlace := make([]*chainRow, to-from)
	for i := range rows {
		r := &rows[i]
		j := r.seq - from - 1
		if j < 0 || j >= int64(len(byPlace)) || byPlace[j] != nil {
			return nil, notIntact(r.seq, r.String()+" claims a place twice or outside the stretch")
		}
		byPlace[j] = r
	}
	prev := base
	for j, r := range byPlace {
		seq := from + int64(j) + 1
		if r == nil {
			return nil, notIntact(seq, fmt.Sprintf("no row holds chain place %d", seq))
		}
		if !bytes.Equal(linkHash(prev, seq, r.digest), r.hash) {
			return nil, notIntact(seq, r.String()+" is not what was written there")
		}
		prev = r.hash
	}
	return prev, nil
}

func notIntact(seq int64, what string) error {
	return rotor.Errorf(rotor.EConflict,
		"the audit chain does not verify at place %d (%s): prune deletes nothing from a chain that does not verify; run rotor-ca audit verify",
		seq, what)
}
