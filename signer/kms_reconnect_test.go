package signer

import (
	"context"
	"crypto/elliptic"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
)

// TestKMSReconnectsSoonAfterLongOutage stops the KMS for long enough that
// gRPC's reconnection backoff, left at its default, would have grown past
// 6s (it grows by 1.6 per failed attempt up to 120s), while signatures keep
// being tried as the breaker's probes try them. Once the KMS is back on
// its address the signer must sign again within a few seconds, not after
// a backoff that grows with the outage.
func TestKMSReconnectsSoonAfterLongOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 20s; skipped with -short")
	}
	t.Parallel()
	srv, cfg, _ := startKMS(t, elliptic.P256())
	s := openKMSSigner(t, cfg)
	check := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return rotor.CheckSigner(ctx, s)
	}
	if err := check(); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	// 18s: past the sixth failed attempt, with the seventh ~10s away.
	for end := time.Now().Add(18 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		wantCode(t, check(), rotor.ESignerUnavailable)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	const limit = 3 * time.Second // kmsReconnectMaxDelay with its jitter, and a margin
	var err error
	for err = check(); err != nil && time.Since(back) < time.Minute; err = check() {
		time.Sleep(50 * time.Millisecond)
	}
	lag := time.Since(back)
	if err != nil || lag > limit {
		t.Fatalf("signed again %v after the KMS came back (%v), want within %v", lag.Round(time.Millisecond), err, limit)
	}
	t.Logf("signed again %v after the KMS came back", lag.Round(time.Millisecond))
}
