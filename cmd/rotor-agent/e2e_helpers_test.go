package main_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
)

// diskPair loads the agent's files through ..data, as a workload would.
func diskPair(dir string) (*x509.Certificate, string, error) {
	f, version, err := client.ReadFiles(dir)
	if err != nil {
		return nil, "", err
	}
	pair, err := tls.X509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, "", fmt.Errorf("version %s: %w", version, err)
	}
	if _, err := rotor.ParseCertificates(f.Bundle); err != nil {
		return nil, "", fmt.Errorf("version %s bundle: %w", version, err)
	}
	return pair.Leaf, version, nil
}

// watchPairs reads the pair in a loop until ctx ends and returns the first
// error seen, if any.
func watchPairs(ctx context.Context, dir string) func() error {
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if _, _, err := diskPair(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return func() error {
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return first
	}
}
