package signer

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rotor-dev/rotor"
)

// BenchmarkSign measures P-256 signatures per second through each backend
// from 1 and 8 goroutines:
//
//	go test ./signer/ -run '^$' -bench Sign -benchtime 2s
//
// The KMS fake runs in the same process, so its gRPC server shares the CPU
// with the client: the figure is a floor for the client's own cost, not a
// prediction of Cloud KMS latency.
func BenchmarkSign(b *testing.B) {
	backends := []struct {
		name string
		open func(b *testing.B) rotor.Signer
	}{
		{"file", func(b *testing.B) rotor.Signer {
			return must(Generate(context.Background(), Config{Backend: BackendFile, KeyFile: filepath.Join(b.TempDir(), "k.pem")}, rotor.ECDSAP256))
		}},
		{"pkcs11", benchPKCS11Signer},
		{"gcpkms", func(b *testing.B) rotor.Signer {
			_, cfg, _ := startKMS(b, elliptic.P256())
			return openKMSSigner(b, cfg)
		}},
	}
	digest := sha256.Sum256([]byte("benchmark"))
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s := be.open(b)
			for _, g := range []int{1, 8} {
				b.Run(fmt.Sprintf("goroutines-%d", g), func(b *testing.B) {
					benchSign(b, s, digest[:], g)
				})
			}
		})
	}
}

// benchSign makes b.N signatures shared out among goroutines.
func benchSign(b *testing.B, s rotor.Signer, digest []byte, goroutines int) {
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range goroutines {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if _, err := s.Sign(ctx, digest, crypto.SHA256); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "signs/s")
}
