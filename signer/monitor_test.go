package signer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/signer/kmsfake"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var _ Key = (*Monitored)(nil)

// monitoredKMS wraps a real KMS signer, whose fake server can fail on
// demand, in the metrics and a Monitored, as the CA does, closed at the end
// of the test.
func monitoredKMS(t *testing.T, cfg MonitorConfig) (*kmsfake.Server, *Monitored) {
	t.Helper()
	srv, kcfg, _ := startKMS(t, elliptic.P256())
	s, err := Open(context.Background(), kcfg)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMonitored(NewMetrics(prometheus.NewRegistry()).Instrument(s), cfg)
	t.Cleanup(func() { m.Close() })
	return srv, m
}

func signOnce(ctx context.Context, s rotor.Signer) error {
	d := sha256.Sum256([]byte("monitored"))
	_, err := s.Sign(ctx, d[:], crypto.SHA256)
	return err
}

func TestMonitoredTurnsUnhealthyAndFailsFast(t *testing.T) {
	// The probe waits an hour, so every call the fake sees is the test's.
	srv, m := monitoredKMS(t, MonitorConfig{FailureThreshold: 3, ProbeInterval: time.Hour})
	ctx := context.Background()
	wantCode(t, m.Check(ctx), "")
	srv.SetFault(kmsfake.Fault{Code: codes.Unavailable})
	for i := 1; i <= 3; i++ {
		if !m.Healthy() {
			t.Fatalf("unhealthy after %d failures, threshold is 3", i-1)
		}
		wantCode(t, signOnce(ctx, m), rotor.ESignerUnavailable)
	}
	if m.Healthy() {
		t.Fatal("still healthy after 3 consecutive failures")
	}
	srv.SetFault(kmsfake.Fault{}) // the backend is back, but no probe has run yet
	calls := srv.Calls()
	wantCode(t, signOnce(ctx, m), rotor.ESignerUnavailable)
	wantCode(t, m.Check(ctx), rotor.ESignerUnavailable)
	if got := srv.Calls(); got != calls {
		t.Fatalf("an unhealthy signer called the backend %d times; want none", got-calls)
	}
}

func TestMonitoredRecovers(t *testing.T) {
	srv, m := monitoredKMS(t, MonitorConfig{FailureThreshold: 2, ProbeInterval: 10 * time.Millisecond, ProbeMaxInterval: 50 * time.Millisecond})
	ctx := context.Background()
	srv.SetFault(kmsfake.Fault{Code: codes.Unavailable})
	for range 2 {
		wantCode(t, signOnce(ctx, m), rotor.ESignerUnavailable)
	}
	if m.Healthy() {
		t.Fatal("still healthy during an outage")
	}
	// Let a probe meet the outage first, so recovery comes from a later one.
	tripped := srv.Calls()
	for deadline := time.Now().Add(30 * time.Second); srv.Calls() == tripped && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if m.Healthy() {
		t.Fatal("a probe during the outage marked the signer healthy")
	}
	srv.SetFault(kmsfake.Fault{})
	for deadline := time.Now().Add(30 * time.Second); !m.Healthy() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if !m.Healthy() {
		t.Fatal("the probe did not mark the signer healthy after the outage ended")
	}
	wantCode(t, m.Check(ctx), "")
	selfSigned(t, m)
}

func TestMonitoredCallerCancellationDoesNotCount(t *testing.T) {
	_, m := monitoredKMS(t, MonitorConfig{FailureThreshold: 1, ProbeInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 3 {
		if err := signOnce(ctx, m); err == nil {
			t.Fatal("signed with a cancelled context")
		}
	}
	if !m.Healthy() {
		t.Fatal("callers giving up made the signer unhealthy")
	}
}

func TestMonitoredSignTimeout(t *testing.T) {
	srv, m := monitoredKMS(t, MonitorConfig{SignTimeout: 50 * time.Millisecond, FailureThreshold: 1, ProbeInterval: time.Hour})
	srv.SetFault(kmsfake.Fault{Delay: time.Minute})
	err := signOnce(context.Background(), m)
	wantCode(t, err, rotor.ESignerUnavailable)
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("gRPC code %s, want DeadlineExceeded (error: %v)", status.Code(err), err)
	}
	if m.Healthy() {
		t.Fatal("a hung backend left the signer healthy")
	}
}

func TestMonitoredCheckCatchesWrongSignatures(t *testing.T) {
	k1 := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	k2 := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	m := NewMonitored(wrongKey{rotor.LocalSigner{Key: k2}, k1.Public()}, MonitorConfig{ProbeInterval: time.Hour})
	defer m.Close()
	wantCode(t, m.Check(context.Background()), rotor.ESignerUnavailable)
	if m.Healthy() {
		t.Fatal("a signer making unverifiable signatures is still healthy")
	}
}

// TestMonitoredCloseClosesBackend: Close goes through every wrapper to the
// backend, so nothing the CA wraps leaks its connection.
func TestMonitoredCloseClosesBackend(t *testing.T) {
	_, m := monitoredKMS(t, MonitorConfig{})
	inner := m.s
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := signOnce(context.Background(), inner); err == nil {
		t.Fatal("the wrapped KMS signer still signs after Close")
	}
}
