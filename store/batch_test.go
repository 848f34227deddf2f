package store

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rotor-dev/rotor"
)

// committer is a commit function that records what it committed, and whose
// calls can be held until the test releases them.
type committer struct {
	mu      sync.Mutex
	batches [][]int
	hold    chan struct{} // if non-nil, each commit first takes a token from it
	fail    error         // returned by commits after the first
}

func (c *committer) commit(ctx context.Context, items []int) error {
	if c.hold != nil {
		select {
		case <-c.hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil && len(c.batches) > 0 {
		return c.fail
	}
	c.batches = append(c.batches, slices.Clone(items))
	return nil
}

func (c *committer) committed() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Concat(c.batches...)
}

func (c *committer) sizes() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n []int
	for _, b := range c.batches {
		n = append(n, len(b))
	}
	return n
}

func testBatcher(c *committer, writers, maxBatch int) *batcher[int] {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return newBatcher(batchConfig{writers: writers, maxBatch: maxBatch, timeout: time.Minute, log: log}, c.commit)
}

// submitAll submits items from one goroutine each and returns their results
// by item once all have returned.
func submitAll(ctx context.Context, b *batcher[int], items []int) map[int]error {
	var mu sync.Mutex
	var wg sync.WaitGroup
	res := map[int]error{}
	for _, it := range items {
		wg.Go(func() {
			err := b.Submit(ctx, it)
			mu.Lock()
			res[it] = err
			mu.Unlock()
		})
	}
	wg.Wait()
	return res
}

func TestBatcherOrder(t *testing.T) {
	c := &committer{}
	b := testBatcher(c, 1, 16)
	defer b.Close()
	var want []int
	for i := range 100 {
		if err := b.Submit(t.Context(), i); err != nil {
			t.Fatalf("Submit(%d): %v", i, err)
		}
		want = append(want, i)
	}
	if got := c.committed(); !slices.Equal(got, want) {
		t.Fatalf("committed %v, want %v", got, want)
	}
}

// TestBatcherCoalesces holds the first commit while 49 more callers queue,
// and checks they are committed together, in one transaction.
func TestBatcherCoalesces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &committer{hold: make(chan struct{})}
		b := testBatcher(c, 1, 64)
		defer b.Close()
		first := make(chan error, 1)
		go func() { first <- b.Submit(context.Background(), 0) }()
		synctest.Wait() // item 0 is in a commit, held
		rest := make(chan map[int]error, 1)
		go func() { rest <- submitAll(context.Background(), b, seq(1, 50)) }()
		synctest.Wait() // items 1..49 are queued behind it
		c.hold <- struct{}{}
		c.hold <- struct{}{}
		if err := <-first; err != nil {
			t.Fatalf("first Submit: %v", err)
		}
		for it, err := range <-rest {
			if err != nil {
				t.Errorf("Submit(%d): %v", it, err)
			}
		}
		if got := c.sizes(); !slices.Equal(got, []int{1, 49}) {
			t.Fatalf("batch sizes %v, want [1 49]", got)
		}
	})
}

// TestBatcherLinger checks that a batch of concurrent callers waits its
// linger for more, and that a lone caller never waits.
func TestBatcherLinger(t *testing.T) {
	const linger = time.Millisecond
	for _, tc := range []struct {
		name   string
		linger time.Duration
		sizes  []int
	}{
		{"lingering", linger, []int{1, 3}},
		{"not lingering", 0, []int{1, 2, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := &committer{hold: make(chan struct{}, 3)}
				log := slog.New(slog.DiscardHandler)
				b := newBatcher(batchConfig{writers: 1, maxBatch: 64, timeout: time.Minute, linger: tc.linger, log: log},
					c.commit)
				defer b.Close()
				start := time.Now()
				c.hold <- struct{}{}
				if err := b.Submit(t.Context(), 0); err != nil {
					t.Fatal(err)
				}
				if waited := time.Since(start); waited != 0 {
					t.Fatalf("a lone caller waited %v", waited)
				}
				// Items 1 and 2 queue behind a held commit of item 10; item 3
				// comes half a linger after they are taken.
				res := make(chan map[int]error, 2)
				c.hold = make(chan struct{}, 3)
				go func() { res <- submitAll(t.Context(), b, []int{10}) }()
				synctest.Wait()
				go func() { res <- submitAll(t.Context(), b, []int{1, 2}) }()
				synctest.Wait()
				c.hold <- struct{}{}
				c.hold <- struct{}{}
				c.hold <- struct{}{}
				synctest.Wait()
				go func() {
					time.Sleep(linger / 2)
					res <- submitAll(t.Context(), b, []int{3})
				}()
				for range 3 {
					for it, err := range <-res {
						if err != nil {
							t.Errorf("Submit(%d): %v", it, err)
						}
					}
				}
				if got := c.sizes(); !slices.Equal(got[1:], tc.sizes) {
					t.Fatalf("batch sizes after the first %v, want %v", got[1:], tc.sizes)
				}
			})
		})
	}
}

func TestBatcherMaxBatch(t *testing.T) {
	c := &committer{}
	b := testBatcher(c, 3, 8)
	defer b.Close()
	for it, err := range submitAll(t.Context(), b, seq(0, 300)) {
		if err != nil {
			t.Fatalf("Submit(%d): %v", it, err)
		}
	}
	got := c.committed()
	slices.Sort(got)
	if !slices.Equal(got, seq(0, 300)) {
		t.Fatalf("committed %d items, want each of 0..299 once", len(got))
	}
	for _, n := range c.sizes() {
		if n > 8 {
			t.Fatalf("batch of %d, over the cap of 8", n)
		}
	}
}

// TestBatcherCommitError checks that a failed commit fails every caller in
// it, with EStoreUnavailable and the cause.
func TestBatcherCommitError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("connection reset")
		c := &committer{hold: make(chan struct{}), fail: boom}
		b := testBatcher(c, 1, 64)
		defer b.Close()
		go b.Submit(context.Background(), 0) //nolint:errcheck // the first commit succeeds
		synctest.Wait()
		rest := make(chan map[int]error, 1)
		go func() { rest <- submitAll(context.Background(), b, seq(1, 11)) }()
		synctest.Wait()
		c.hold <- struct{}{}
		c.hold <- struct{}{}
		for it, err := range <-rest {
			if code := rotor.ErrorCodeOf(err); code != rotor.EStoreUnavailable || !errors.Is(err, boom) {
				t.Errorf("Submit(%d) = %v (code %q), want %q wrapping the cause", it, err, code, rotor.EStoreUnavailable)
			}
		}
	})
}

// TestBatcherCallerGivesUp checks that a caller whose ctx ends during the
// commit hears EStoreUnavailable at once, and its record is still committed.
func TestBatcherCallerGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &committer{hold: make(chan struct{})}
		b := testBatcher(c, 1, 64)
		defer b.Close()
		ctx, cancel := context.WithCancel(context.Background())
		res := make(chan error, 1)
		go func() { res <- b.Submit(ctx, 7) }()
		synctest.Wait()
		cancel()
		err := <-res // returns while the commit is still held
		if code := rotor.ErrorCodeOf(err); code != rotor.EStoreUnavailable || !errors.Is(err, context.Canceled) {
			t.Fatalf("Submit = %v (code %q), want %q wrapping context.Canceled", err, code, rotor.EStoreUnavailable)
		}
		c.hold <- struct{}{}
		b.Close()
		if got := c.committed(); !slices.Equal(got, []int{7}) {
			t.Fatalf("committed %v, want [7]", got)
		}
		if err := b.Submit(context.Background(), 8); rotor.ErrorCodeOf(err) != rotor.EStoreUnavailable {
			t.Fatalf("Submit after Close = %v, want %q", err, rotor.EStoreUnavailable)
		}
	})
}

// TestBatcherCloseDrains closes the batcher while a commit is held and
// callers are queued: the held commit completes, and every caller hears
// either success (its item committed) or "closed" (its item not committed).
func TestBatcherCloseDrains(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &committer{hold: make(chan struct{}, 100)}
		b := testBatcher(c, 1, 4)
		first := make(chan error, 1)
		go func() { first <- b.Submit(context.Background(), 0) }()
		synctest.Wait()
		rest := make(chan map[int]error, 1)
		go func() { rest <- submitAll(context.Background(), b, seq(1, 20)) }()
		synctest.Wait()
		closed := make(chan struct{})
		go func() { b.Close(); close(closed) }()
		synctest.Wait()
		for range 100 {
			c.hold <- struct{}{}
		}
		<-closed
		if err := <-first; err != nil {
			t.Fatalf("Submit of the item in flight at Close: %v", err)
		}
		committed := c.committed()
		for it, err := range <-rest {
			switch in := slices.Contains(committed, it); {
			case err == nil && !in:
				t.Errorf("Submit(%d) succeeded but the item was not committed", it)
			case err != nil && in:
				t.Errorf("Submit(%d) = %v but the item was committed", it, err)
			case err != nil && rotor.ErrorCodeOf(err) != rotor.EStoreUnavailable:
				t.Errorf("Submit(%d) = %v, want code %q", it, err, rotor.EStoreUnavailable)
			}
		}
	})
}

func seq(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}
