package store

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/rotor-dev/rotor"
)

// commitFunc writes items in one transaction and returns only once it is
// committed, or an error if nothing was. It must honour ctx.
type commitFunc[T any] func(ctx context.Context, items []T) error

// batcher is group commit: concurrent callers hand their record to one of a
// few writer goroutines, which commits everything waiting in one transaction
// and tells each caller the commit's result. A durable commit costs an fsync
// whether it carries one row or two hundred, so under load this turns
// thousands of fsyncs a second into a few hundred.
//
// Submit is safe for concurrent use. Items a single writer takes are
// committed in the order they were submitted.
type batcher[T any] struct {
	commit   commitFunc[T]
	maxBatch int
	timeout  time.Duration // bound on one commit
	linger   time.Duration // see batchConfig
	log      *slog.Logger

	// queue is unbuffered so that once every writer has exited nobody can
	// hand over an item, and a send that succeeded always has a writer.
	queue   chan pending[T]
	closing chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

type pending[T any] struct {
	ctx  context.Context
	item T
	done chan error // buffered: a writer never waits for a caller that gave up
}

type batchConfig struct {
	writers  int
	maxBatch int
	timeout  time.Duration
	// linger is how long a writer holding a batch of two or more (so the
	// callers are concurrent) waits for more before committing. A commit's
	// cost is mostly per transaction (pages rewritten, an fsync), so under
	// load a few hundred microseconds buy batches several times larger; a
	// lone caller never waits.
	linger time.Duration
	log    *slog.Logger
}

func newBatcher[T any](cfg batchConfig, commit commitFunc[T]) *batcher[T] {
	b := &batcher[T]{
		commit:   commit,
		maxBatch: max(cfg.maxBatch, 1),
		timeout:  cfg.timeout,
		linger:   cfg.linger,
		log:      cfg.log,
		queue:    make(chan pending[T]),
		closing:  make(chan struct{}),
	}
	for range max(cfg.writers, 1) {
		b.wg.Add(1)
		go b.write()
	}
	return b
}

// Submit hands item to a writer and waits until it is committed. It returns
// an *rotor.Error with EStoreUnavailable when the commit fails, the batcher
// is closed, or ctx ends first; in the last case the item may still be
// committed, which is harmless for an audit row (the reverse would not be).
func (b *batcher[T]) Submit(ctx context.Context, item T) error {
	p := pending[T]{ctx: ctx, item: item, done: make(chan error, 1)}
	select {
	case b.queue <- p:
	case <-b.closing:
		return errClosed
	case <-ctx.Done():
		return unavailable(ctx.Err())
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return unavailable(ctx.Err())
	}
}

// Close stops accepting items, commits those already handed over, and waits
// for the writers to finish.
func (b *batcher[T]) Close() {
	b.once.Do(func() { close(b.closing) })
	b.wg.Wait()
}

func (b *batcher[T]) write() {
	defer b.wg.Done()
	batch := make([]pending[T], 0, b.maxBatch)
	for {
		select {
		case p := <-b.queue:
			batch = b.fill(append(batch[:0], p))
			b.flush(batch)
		case <-b.closing:
			// Callers blocked in Submit may still win the race against
			// closing; take what is offered without waiting, then stop.
			for {
				batch = b.fill(batch[:0])
				if len(batch) == 0 {
					return
				}
				b.flush(batch)
			}
		}
	}
}

// fill adds whatever is already waiting: latency stays one commit when
// idle, and batches grow by themselves under load. With a linger, a batch
// of two or more then waits that long for more.
func (b *batcher[T]) fill(batch []pending[T]) []pending[T] {
drain:
	for len(batch) < b.maxBatch {
		select {
		case p := <-b.queue:
			batch = append(batch, p)
		default:
			break drain
		}
	}
	if b.linger <= 0 || len(batch) < 2 || len(batch) >= b.maxBatch {
		return batch
	}
	t := time.NewTimer(b.linger)
	defer t.Stop()
	for len(batch) < b.maxBatch {
		select {
		case p := <-b.queue:
			batch = append(batch, p)
		case <-t.C:
			return batch
		case <-b.closing:
			return batch
		}
	}
	return batch
}

func (b *batcher[T]) flush(batch []pending[T]) {
	// Skip callers who already gave up: they have been told "unavailable",
	// so dropping their row keeps the promise and saves the write.
	live := batch[:0]
	for _, p := range batch {
		if err := p.ctx.Err(); err != nil {
			p.done <- unavailable(err)
			continue
		}
		live = append(live, p)
	}
	if len(live) == 0 {
		return
	}
	items := make([]T, len(live))
	for i, p := range live {
		items[i] = p.item
	}
	// The commit's context is the writer's, not any caller's: one caller
	// leaving must not abort the others' transaction.
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	err := b.commit(ctx, items)
	cancel()
	if err != nil {
		b.log.Error("audit store commit failed", "records", len(items), "error", err)
		err = unavailable(err)
	}
	for _, p := range live {
		p.done <- err
	}
}

// errClosed is returned for records submitted after Close.
var errClosed = rotor.Errorf(rotor.EStoreUnavailable, "the CA's database connection is closed")

// unavailable gives err the code EStoreUnavailable unless it already carries
// a code, keeping the cause for the log.
func unavailable(err error) error {
	var e *rotor.Error
	if err == nil || errors.As(err, &e) {
		return err
	}
	return rotor.WrapError(rotor.EStoreUnavailable, err, "the CA's database is unavailable; retry later")
}
