//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// lockDir takes an exclusive flock on the directory holding the SQLite file
// at path, waiting until it is free or ctx ends, and returns its release.
// The directory, not the file: SQLite's own POSIX locks on the file would be
// dropped by this process closing any descriptor of it, and a directory
// needs no lock file left lying around. flock locks are per open file, so
// two goroutines of one process exclude each other too.
func lockDir(ctx context.Context, path string) (unlock func(), err error) {
	dir := filepath.Dir(path)
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("lock %s for migration: %w", dir, err)
	}
	// Polling, because a blocking flock cannot be cancelled by ctx.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s for migration: %w", dir, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s for migration: %w", dir, ctx.Err())
		case <-tick.C:
		}
	}
}
