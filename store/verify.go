package store

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
)

// chainRow is one audited row as verification reads it: its place (0 if
// it has none), its stored hash and the digest of its columns as read.
type chainRow struct {
	kind   string
	key    string // serial or id: how a person finds the row
	seq    int64
	hash   []byte
	digest digest
}

func (r chainRow) String() string {
	if r.seq == 0 {
		return fmt.Sprintf("%s row %s", r.kind, r.key)
	}
	return fmt.Sprintf("%s row %s (chain place %d)", r.kind, r.key, r.seq)
}

// chainState is audit_chain's one row.
type chainState struct {
	head, base chainHead
	sealed     bool
}

// chainSnapshot reads the chain in one consistent snapshot of the store.
type chainSnapshot interface {
	state(ctx context.Context) (chainState, error)
	// links calls fn with the place and hash of every row of kind that has
	// a place, in place order.
	links(ctx context.Context, kind string, fn func(seq int64, hash []byte) error) error
	// rows calls fn with every row of kind, in place order, rows without a
	// place first.
	rows(ctx context.Context, kind string, fn func(chainRow) error) error
}

// Problem kinds, as a verification report names them.
const (
	ProblemAltered   = "altered"
	ProblemDeleted   = "deleted"
	ProblemInserted  = "inserted"
	ProblemReordered = "reordered"
	ProblemRewritten = "rewritten" // consistent, but not the history a checkpoint signed
)

// Problem is one thing verification found wrong.
type Problem struct {
	Kind string // a Problem constant
	Seq  int64  // the chain place it is at, 0 if none
	// Row names the row (table, key and place), "" for a missing one.
	Row    string
	Detail string
}

func (p Problem) String() string {
	s := p.Kind + ": "
	if p.Row != "" {
		s += p.Row + ": "
	}
	return s + p.Detail
}

// Checkpoint is a chain head an auditor kept: its place and hash.
type Checkpoint struct {
	Seq  int64
	Hash []byte
}

// Verification is what Verify found.
type Verification struct {
	// Rows is how many chained rows were checked; Base and Head bound the
	// chain (Base is 0 unless prune deleted the oldest rows).
	Rows       int64
	Base, Head int64
	// Problems are in chain order, the first one first; at most
	// maxProblems are kept. Empty means intact.
	Problems []Problem
}

// Intact reports whether nothing was wrong.
func (v *Verification) Intact() bool { return len(v.Problems) == 0 }

const maxProblems = 20

// verifyChain checks every chained row in snap and, if cp is set, that the
// chain reaches cp. Storage errors are returned; what is wrong with the
// chain is in the result.
func verifyChain(ctx context.Context, snap chainSnapshot, cp *Checkpoint) (*Verification, error) {
	st, err := snap.state(ctx)
	if err != nil {
		return nil, err
	}
	v := &Verification{Base: st.base.seq, Head: st.head.seq}
	n := max(st.head.seq-st.base.seq, 0)
	c := &chainCheck{st: st, v: v, stored: make([]digest, n), has: make([]bool, n), duplicates: map[int64]bool{}}
	// Pass one: every place's stored hash, so each row can be checked
	// against its predecessor whatever table that is in. Places outside
	// the chain are reported in pass two.
	for _, kind := range chainKinds {
		err := snap.links(ctx, kind, func(seq int64, hash []byte) error {
			i := seq - st.base.seq - 1
			if i < 0 || i >= n {
				return nil
			}
			if c.has[i] {
				c.duplicates[seq] = false
			}
			c.has[i] = true
			copy(c.stored[i][:], hash)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	// Pass two: each row's digest against its stored hash.
	for _, kind := range chainKinds {
		if err := snap.rows(ctx, kind, c.row); err != nil {
			return nil, err
		}
	}
	c.ends()
	if cp != nil {
		c.checkpoint(*cp)
	}
	sort.SliceStable(v.Problems, func(i, j int) bool { return order(v.Problems[i]) < order(v.Problems[j]) })
	if len(v.Problems) > maxProblems {
		v.Problems = v.Problems[:maxProblems]
	}
	return v, nil
}

// order puts problems in chain order; rows without a place go first.
func order(p Problem) int64 { return p.Seq }

// chainCheck holds what pass one read: the stored hash of each place from
// base+1 to head, at index place-base-1 (32 bytes a row: a million rows
// cost 33 MB).
type chainCheck struct {
	st         chainState
	v          *Verification
	stored     []digest
	has        []bool
	duplicates map[int64]bool // places two rows claim: reported yet?
	failed     int            // rows whose hash did not verify
}

// at is the stored hash at place seq, nil if no row holds it.
func (c *chainCheck) at(seq int64) []byte {
	if seq == c.st.base.seq {
		return c.st.base.hash
	}
	i := seq - c.st.base.seq - 1
	if i < 0 || i >= int64(len(c.has)) || !c.has[i] {
		return nil
	}
	return c.stored[i][:]
}

func (c *chainCheck) add(p Problem) { c.v.Problems = append(c.v.Problems, p) }

// prev is the stored hash before place seq, nil if that row is missing.
func (c *chainCheck) prev(seq int64) []byte { return c.at(seq - 1) }

func (c *chainCheck) row(r chainRow) error {
	c.v.Rows++
	switch {
	case r.seq == 0 && c.st.sealed:
		c.add(Problem{Kind: ProblemInserted, Row: r.String(), Detail: "the row has no place in the chain"})
		return nil
	case r.seq == 0:
		return nil // written before the chain existed, and not yet sealed in
	case r.seq <= c.st.base.seq:
		c.add(Problem{Kind: ProblemInserted, Seq: r.seq, Row: r.String(),
			Detail: fmt.Sprintf("its place is before the chain's base %d (where prune left it)", c.st.base.seq)})
		return nil
	case r.seq > c.st.head.seq:
		c.add(Problem{Kind: ProblemInserted, Seq: r.seq, Row: r.String(),
			Detail: fmt.Sprintf("its place is after the chain's head %d", c.st.head.seq)})
		return nil
	}
	prev := c.prev(r.seq)
	if prev == nil {
		return nil // the gap before it is reported as a deletion
	}
	if bytes.Equal(linkHash(prev, r.seq, r.digest), r.hash) {
		return nil
	}
	if reported, dup := c.duplicates[r.seq]; dup && !reported {
		c.duplicates[r.seq] = true
		c.add(Problem{Kind: ProblemInserted, Seq: r.seq, Row: r.String(),
			Detail: fmt.Sprintf("a second row claims chain place %d, and its hash does not verify there", r.seq)})
		return nil
	}
	c.classify(r)
	return nil
}

// classify says what happened to a row whose hash does not verify: moved
// from another place (its hash verifies there), or altered. The search
// for the place it came from hashes once per place, so only the first few
// failures get it.
func (c *chainCheck) classify(r chainRow) {
	c.failed++
	if c.failed > maxProblems {
		return
	}
	for seq := c.st.base.seq + 1; seq <= c.st.head.seq && c.failed <= 3; seq++ {
		if seq == r.seq {
			continue
		}
		if prev := c.prev(seq); prev != nil && bytes.Equal(linkHash(prev, seq, r.digest), r.hash) {
			c.add(Problem{Kind: ProblemReordered, Seq: r.seq, Row: r.String(),
				Detail: fmt.Sprintf("the row was moved: it was written at place %d", seq)})
			return
		}
	}
	c.add(Problem{Kind: ProblemAltered, Seq: r.seq, Row: r.String(),
		Detail: "its content or hash is not what was written"})
}

// ends checks for places with no row or two rows, and that the last row is
// the head.
func (c *chainCheck) ends() {
	for seq, reported := range c.duplicates {
		if !reported {
			c.add(Problem{Kind: ProblemInserted, Seq: seq, Detail: fmt.Sprintf("two rows claim chain place %d", seq)})
		}
	}
	missing := 0
	for seq := c.st.base.seq + 1; seq <= c.st.head.seq && missing < maxProblems; seq++ {
		if c.at(seq) == nil {
			missing++
			c.add(Problem{Kind: ProblemDeleted, Seq: seq, Detail: fmt.Sprintf("no row holds chain place %d", seq)})
		}
	}
	if h := c.at(c.st.head.seq); c.st.head.seq > c.st.base.seq && h != nil && !bytes.Equal(h, c.st.head.hash) {
		c.add(Problem{Kind: ProblemAltered, Seq: c.st.head.seq,
			Detail: "the chain head in audit_chain does not match its last row"})
	}
}

// checkpoint checks that the chain passes through cp.
func (c *chainCheck) checkpoint(cp Checkpoint) {
	var got []byte
	switch {
	case cp.Seq < c.st.base.seq:
		c.add(Problem{Kind: ProblemDeleted, Seq: cp.Seq, Detail: fmt.Sprintf(
			"the checkpoint at place %d is older than the oldest row kept (prune left the chain's base at %d): verify against a later checkpoint",
			cp.Seq, c.st.base.seq)})
		return
	case cp.Seq > c.st.head.seq:
		c.add(Problem{Kind: ProblemDeleted, Seq: cp.Seq, Detail: fmt.Sprintf(
			"the checkpoint is at place %d but the chain ends at %d: rows were deleted from its end", cp.Seq, c.st.head.seq)})
		return
	default:
		got = c.at(cp.Seq)
	}
	if !bytes.Equal(got, cp.Hash) {
		c.add(Problem{Kind: ProblemRewritten, Seq: cp.Seq, Detail: fmt.Sprintf(
			"the chain's hash at place %d is not the checkpoint's: the history up to it was rewritten", cp.Seq)})
	}
}

// Report writes v for a person: a summary line, then each problem.
func (v *Verification) Report() string {
	var b strings.Builder
	if v.Intact() {
		fmt.Fprintf(&b, "audit chain intact: %d rows, places %d to %d\n", v.Rows, v.Base+1, v.Head)
		return b.String()
	}
	fmt.Fprintf(&b, "audit chain NOT intact (%d rows, places %d to %d); first problem first:\n", v.Rows, v.Base+1, v.Head)
	for _, p := range v.Problems {
		fmt.Fprintf(&b, "  %s\n", p)
	}
	return b.String()
}
