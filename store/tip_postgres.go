package store

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// chainTip is the audit chain's head as this process last wrote it: a
// guess that lets a group commit go to Postgres in one round trip,
//
//	BEGIN
//	UPDATE audit_chain ... WHERE seq = <tip> AND hash = <tip>, failing unless one row moved
//	INSERT ... (each record, linked onto the tip)
//	COMMIT
//
// instead of the four the locking path needs (BEGIN; SELECT ... FOR UPDATE;
// the inserts; COMMIT), which holds the head's row lock across two of
// them, so every commit also waited on the CA being scheduled. Here the
// UPDATE takes the lock before any insert, and it is held only while
// Postgres writes and flushes.
//
// The guess is only ever an optimisation: the UPDATE's WHERE is what keeps
// the chain whole. When anything else has moved the head (a replica, a CLI
// command, this process's own locking path), the guard fails, the
// transaction is rolled back having written nothing, and the commit takes
// the locking path, whose result becomes the next guess.
type chainTip struct {
	// turn lets one commit at a time go at the tip: a second, sent on
	// another connection, could reach Postgres before the first and miss.
	// The other writer waits here with its batch ready, and sends it the
	// moment the first commit is done.
	turn sync.Mutex

	mu    sync.Mutex // guards the fields below
	head  chainHead
	known bool   // head is worth a guess
	gen   uint64 // counts changes of head
	// lockUntil: while another process writes the chain too, most guesses
	// miss and each costs a round trip, so until then commits lock first.
	lockUntil time.Time

	hits, misses atomic.Int64 // commits at the tip, and guesses that missed
}

// tipBackoff is how long commits lock first after another process moved
// the head: a wasted round trip a second at most while replicas share it.
const tipBackoff = time.Second

// pgChainAdvance moves the head from ($1, $2) to ($3, $4), and divides by
// zero (SQLSTATE 22012), aborting the transaction, if the head was not
// there. Under READ COMMITTED an UPDATE that waited for the row lock
// re-checks its WHERE against the row as the lock holder committed it.
const pgChainAdvance = `WITH moved AS (
	UPDATE audit_chain SET seq = $3, hash = $4 WHERE id = 1 AND seq = $1 AND hash = $2 RETURNING 1)
	SELECT 1 / count(*) FROM moved`

const sqlstateDivisionByZero = "22012"

// settle records head as committed.
func (t *chainTip) settle(head chainHead) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.head, t.known = head, true
	t.gen++
}

// guess returns the head to append at, and its generation.
func (t *chainTip) guess() (chainHead, uint64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.known || time.Now().Before(t.lockUntil) {
		return chainHead{}, 0, false
	}
	return t.head, t.gen, true
}

// moveTo records head, committed from the guess of generation gen, unless
// a commit that locked has settled a newer head meanwhile.
func (t *chainTip) moveTo(gen uint64, head chainHead) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.gen == gen {
		t.head = head
		t.gen++
	}
}

// forget drops the guess of generation gen. If another process moved the
// head (nothing in this one has settled a newer head), the next guesses
// would likely miss too.
func (t *chainTip) forget(gen uint64, moved bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.gen != gen {
		return
	}
	t.known = false
	if moved {
		t.lockUntil = time.Now().Add(tipBackoff)
	}
}

// appendAtTip tries to commit recs onto the tip in one round trip. It
// returns done false when the locking path should commit them instead:
// there is no guess, the guess missed, or the connection failed before
// anything was sent. Otherwise err is the commit's result.
func (s *pgStore) appendAtTip(ctx context.Context, recs []record) (done bool, err error) {
	t := &s.tip
	t.turn.Lock()
	defer t.turn.Unlock()
	from, gen, ok := t.guess()
	if !ok {
		return false, nil
	}
	head := from
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	// The advance goes first, so the head's lock is taken before any
	// insert; its new head is known once the inserts are linked.
	advance := b.Queue(pgChainAdvance)
	queueRecords(b, recs, &head)
	advance.Arguments = []any{from.seq, from.hash, head.seq, head.hash}
	b.Queue("COMMIT")
	err = s.sendAtTip(ctx, b)
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		t.hits.Add(1)
		t.moveTo(gen, head)
		return true, nil
	case errors.As(err, &pgErr) && pgErr.Code == sqlstateDivisionByZero:
		t.misses.Add(1)
		t.forget(gen, true)
		return false, nil
	default:
		t.forget(gen, false)
		return !pgconn.SafeToRetry(err), err
	}
}

// sendAtTip sends b (BEGIN, the advance, the inserts, COMMIT) in one round
// trip and returns the first statement's error. A transaction left open by
// a failed statement is rolled back before the connection is released.
func (s *pgStore) sendAtTip(ctx context.Context, b *pgx.Batch) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	br := conn.SendBatch(ctx, b)
	for range b.Len() {
		if _, err = br.Exec(); err != nil {
			break
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil && conn.Conn().PgConn().TxStatus() != 'I' {
		// If this fails too, the pool closes the connection on release: it
		// never hands out one inside a transaction.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, _ = conn.Exec(rctx, "ROLLBACK")
	}
	return err
}
