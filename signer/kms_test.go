package signer

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"testing"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/signer/kmsfake"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// startKMS runs a fake KMS holding one key on curve and returns it with a
// config that reaches it through the real client library.
func startKMS(t testing.TB, curve elliptic.Curve) (*kmsfake.Server, Config, crypto.PublicKey) {
	t.Helper()
	srv := kmsfake.Start(t)
	name := kmsfake.KeyVersionName("issuer", 1)
	pub, err := srv.AddKey(name, curve)
	if err != nil {
		t.Fatal(err)
	}
	return srv, Config{Backend: BackendGCPKMS, KMS: KMSConfig{KeyVersion: name, ClientOptions: srv.ClientOptions()}}, pub
}

func openKMSSigner(t testing.TB, cfg Config) rotor.Signer {
	t.Helper()
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.(*kmsSigner).Close() })
	return s
}

func TestKMSSign(t *testing.T) {
	for _, tt := range []struct {
		name  string
		curve elliptic.Curve
	}{
		{"ok/ecdsa-p256", elliptic.P256()},
		{"ok/ecdsa-p384", elliptic.P384()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, cfg, pub := startKMS(t, tt.curve)
			s := openKMSSigner(t, cfg)
			if !rotor.SamePublicKey(s.Public(), pub) {
				t.Fatal("Open fetched another public key than the KMS holds")
			}
			selfSigned(t, s)
			if srv.Calls() == 0 {
				t.Fatal("the certificate was not signed by the KMS")
			}
		})
	}
}

func TestKMSEndpointField(t *testing.T) {
	srv, cfg, _ := startKMS(t, elliptic.P256())
	cfg.KMS.Endpoint = srv.Addr()
	cfg.KMS.ClientOptions = srv.ClientOptions()[1:] // all but WithEndpoint
	selfSigned(t, openKMSSigner(t, cfg))
}

// TestKMSFaults switches each fault on, expects the mapped error, switches
// it off and expects the same signer to work again.
func TestKMSFaults(t *testing.T) {
	tests := []struct {
		name      string
		fault     kmsfake.Fault
		code      rotor.ErrorCode
		permanent bool
	}{
		{"fail/signature-crc-corrupted", kmsfake.Fault{CorruptSignatureCRC: true}, rotor.ESignerUnavailable, false},
		{"fail/digest-crc-not-verified", kmsfake.Fault{UnverifiedDigest: true}, rotor.ESignerUnavailable, false},
		{"fail/other-key-version-answered", kmsfake.Fault{WrongName: true}, rotor.ESignerUnavailable, false},
		{"fail/outage", kmsfake.Fault{Code: codes.Unavailable}, rotor.ESignerUnavailable, false},
		{"fail/quota", kmsfake.Fault{Code: codes.ResourceExhausted}, rotor.ESignerUnavailable, false},
		{"fail/internal", kmsfake.Fault{Code: codes.Internal}, rotor.ESignerUnavailable, false},
		{"fail/permission-denied", kmsfake.Fault{Code: codes.PermissionDenied}, rotor.EInternal, true},
		{"fail/key-version-disabled", kmsfake.Fault{Code: codes.FailedPrecondition}, rotor.EInternal, true},
	}
	srv, cfg, _ := startKMS(t, elliptic.P256())
	s := openKMSSigner(t, cfg)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.SetFault(tt.fault)
			d := sha256.Sum256([]byte("x"))
			_, got := s.Sign(context.Background(), d[:], crypto.SHA256)
			wantCode(t, got, tt.code)
			if errors.Is(got, ErrPermanent) != tt.permanent {
				t.Fatalf("errors.Is(ErrPermanent) = %v, want %v (error: %v)", !tt.permanent, tt.permanent, got)
			}
			srv.SetFault(kmsfake.Fault{})
			if err := rotor.CheckSigner(context.Background(), s); err != nil {
				t.Fatalf("signer did not recover once the fault cleared: %v", err)
			}
		})
	}
}

func TestKMSSignHonoursDeadline(t *testing.T) {
	srv, cfg, _ := startKMS(t, elliptic.P256())
	s := openKMSSigner(t, cfg)
	srv.SetFault(kmsfake.Fault{Delay: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := rotor.CheckSigner(ctx, s)
	wantCode(t, err, rotor.ESignerUnavailable)
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("gRPC code %s, want DeadlineExceeded (error: %v)", status.Code(err), err)
	}
}

func TestKMSSignRefusesWrongDigest(t *testing.T) {
	_, cfg, _ := startKMS(t, elliptic.P256())
	s := openKMSSigner(t, cfg)
	d := sha512.Sum384([]byte("x"))
	_, err := s.Sign(context.Background(), d[:], crypto.SHA384)
	if err == nil || rotor.ErrorCodeOf(err) == rotor.ESignerUnavailable {
		t.Fatalf("SHA-384 digest for a P-256 SHA-256 key: %v, want a non-retryable error", err)
	}
}

func TestKMSOpenRefuses(t *testing.T) {
	tests := []struct {
		name      string
		fault     kmsfake.Fault
		version   int
		code      rotor.ErrorCode
		permanent bool
	}{
		{"fail/no-such-key-version", kmsfake.Fault{}, 2, rotor.EInternal, true},
		{"fail/permission-denied", kmsfake.Fault{Code: codes.PermissionDenied}, 1, rotor.EInternal, true},
		{"fail/outage", kmsfake.Fault{Code: codes.Unavailable}, 1, rotor.ESignerUnavailable, false},
		{"fail/public-key-crc-corrupted", kmsfake.Fault{CorruptPublicKeyCRC: true}, 1, rotor.EInternal, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, cfg, _ := startKMS(t, elliptic.P256())
			srv.SetFault(tt.fault)
			cfg.KMS.KeyVersion = kmsfake.KeyVersionName("issuer", tt.version)
			// GetPublicKey keeps the library's retries; the deadline ends them.
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			s, err := Open(ctx, cfg)
			if err == nil {
				s.(*kmsSigner).Close()
				t.Fatal("Open succeeded")
			}
			wantCode(t, err, tt.code)
			if errors.Is(err, ErrPermanent) != tt.permanent {
				t.Fatalf("errors.Is(ErrPermanent) = %v, want %v (error: %v)", !tt.permanent, tt.permanent, err)
			}
		})
	}
}
