package signer

import (
	"sync"
	"time"
)

// stopper runs the background goroutines of a signer (PKCS#11 reopen,
// health probe) and stops them at Close.
type stopper struct {
	mu      sync.Mutex // held to start goroutines; owners guard their own state with it too
	stopped bool
	done    chan struct{}
	wg      sync.WaitGroup
}

func newStopper() stopper { return stopper{done: make(chan struct{})} }

// goLocked runs f in a goroutine that stop waits for. The caller holds mu
// and has seen stopped false.
func (s *stopper) goLocked(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// sleep waits d, or less if stop is called; it reports whether to go on.
func (s *stopper) sleep(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.done:
		return false
	case <-t.C:
		return true
	}
}

// stop ends the goroutines and waits for them. Only the first call returns
// true.
func (s *stopper) stop() bool {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return false
	}
	s.stopped = true
	close(s.done)
	s.mu.Unlock()
	s.wg.Wait()
	return true
}
