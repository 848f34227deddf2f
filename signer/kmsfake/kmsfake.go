// Package kmsfake is an in-process Cloud KMS for tests: a real gRPC server
// speaking google.cloud.kms.v1 to the real client library, holding ECDSA
// P-256 and P-384 keys and answering GetPublicKey and AsymmetricSign with
// the CRC32C fields the real service sets. Faults (outage, delay, corrupt
// checksums) can be switched on while it runs.
package kmsfake

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"hash/crc32"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Fault is what the server does wrong. The zero value is a healthy server.
type Fault struct {
	// Code, when not codes.OK, fails every call with it: codes.Unavailable
	// is an outage, codes.PermissionDenied a missing IAM grant.
	Code codes.Code
	// Delay holds each call this long (or until the client gives up).
	Delay time.Duration
	// CorruptSignatureCRC sends a signature_crc32c that does not match.
	CorruptSignatureCRC bool
	// UnverifiedDigest reports verified_digest_crc32c = false.
	UnverifiedDigest bool
	// WrongName answers AsymmetricSign for another key version name.
	WrongName bool
	// CorruptPublicKeyCRC sends a pem_crc32c that does not match.
	CorruptPublicKeyCRC bool
}

// TB is the part of testing.TB that Start uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Server is the fake KMS. Its methods are safe for concurrent use.
type Server struct {
	kmspb.UnimplementedKeyManagementServiceServer

	mu    sync.Mutex
	keys  map[string]*ecdsa.PrivateKey
	fault Fault
	calls atomic.Int64

	grpc *grpc.Server
	addr string
}

// New returns a server with no keys, not yet listening.
func New() *Server { return &Server{keys: map[string]*ecdsa.PrivateKey{}} }

// Start listens on 127.0.0.1:0 and stops the server when tb's test ends.
func Start(tb TB) *Server {
	tb.Helper()
	s := New()
	if _, err := s.Listen(); err != nil {
		tb.Fatalf("kmsfake: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Listen serves on a fresh 127.0.0.1 port in the background and returns
// its address.
func (s *Server) Listen() (string, error) {
	return s.listen("127.0.0.1:0")
}

// Restart serves again, after Close, on the address Listen picked: the
// KMS endpoint coming back after an outage in which connecting to it was
// refused. It fails if something else took the port meanwhile.
func (s *Server) Restart() error {
	_, err := s.listen(s.Addr())
	return err
}

func (s *Server) listen(addr string) (string, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listen: %w", err)
	}
	srv := grpc.NewServer()
	kmspb.RegisterKeyManagementServiceServer(srv, s)
	s.mu.Lock()
	s.grpc, s.addr = srv, lis.Addr().String()
	s.mu.Unlock()
	go srv.Serve(lis) //nolint:errcheck // Serve returns when Close stops it
	return lis.Addr().String(), nil
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// ClientOptions point a real KMS client at this server: its endpoint, no
// credentials, plaintext gRPC.
func (s *Server) ClientOptions() []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(s.Addr()),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

// Close stops the server: its listener closes and calls and connections
// in progress end.
func (s *Server) Close() {
	s.mu.Lock()
	srv := s.grpc
	s.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

// KeyVersionName builds a full key version name in project "test".
func KeyVersionName(key string, version int) string {
	return fmt.Sprintf("projects/test/locations/global/keyRings/rotor/cryptoKeys/%s/cryptoKeyVersions/%d", key, version)
}

// AddKey generates a key on curve (P-256 or P-384) under the key version
// name and returns its public key.
func (s *Server) AddKey(name string, curve elliptic.Curve) (*ecdsa.PublicKey, error) {
	if curve != elliptic.P256() && curve != elliptic.P384() {
		return nil, fmt.Errorf("kmsfake: unsupported curve %s", curve.Params().Name)
	}
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[name] = k
	return &k.PublicKey, nil
}

// SetFault replaces the current fault; Fault{} heals the server.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// Calls counts the AsymmetricSign calls received, failed ones included.
func (s *Server) Calls() int64 { return s.calls.Load() }

func crc32c(b []byte) *wrapperspb.Int64Value {
	return wrapperspb.Int64(int64(crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))))
}

// begin applies Delay and Code and returns the key and the fault in force.
// It counts the call in calls, if given, together with reading the fault,
// so a test that sees the count move knows which fault the call met.
func (s *Server) begin(ctx context.Context, name string, calls *atomic.Int64) (*ecdsa.PrivateKey, Fault, error) {
	s.mu.Lock()
	f, k := s.fault, s.keys[name]
	if calls != nil {
		calls.Add(1)
	}
	s.mu.Unlock()
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return nil, f, status.FromContextError(ctx.Err()).Err()
		case <-t.C:
		}
	}
	if f.Code != codes.OK {
		return nil, f, status.Errorf(f.Code, "kmsfake: injected %s", f.Code)
	}
	if k == nil {
		return nil, f, status.Errorf(codes.NotFound, "kmsfake: %s not found", name)
	}
	return k, f, nil
}

func algorithm(k *ecdsa.PrivateKey) kmspb.CryptoKeyVersion_CryptoKeyVersionAlgorithm {
	if k.Curve == elliptic.P384() {
		return kmspb.CryptoKeyVersion_EC_SIGN_P384_SHA384
	}
	return kmspb.CryptoKeyVersion_EC_SIGN_P256_SHA256
}

// GetPublicKey implements kmspb.KeyManagementServiceServer.
func (s *Server) GetPublicKey(ctx context.Context, req *kmspb.GetPublicKeyRequest) (*kmspb.PublicKey, error) {
	k, f, err := s.begin(ctx, req.Name, nil)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "kmsfake: %v", err)
	}
	p := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	resp := &kmspb.PublicKey{Pem: p, PemCrc32C: crc32c([]byte(p)), Algorithm: algorithm(k), Name: req.Name,
		ProtectionLevel: kmspb.ProtectionLevel_HSM}
	if f.CorruptPublicKeyCRC {
		resp.PemCrc32C.Value ^= 1
	}
	return resp, nil
}

// AsymmetricSign implements kmspb.KeyManagementServiceServer. Like the real
// service, it wants the digest that matches the key's algorithm and
// refuses a digest whose digest_crc32c does not match.
func (s *Server) AsymmetricSign(ctx context.Context, req *kmspb.AsymmetricSignRequest) (*kmspb.AsymmetricSignResponse, error) {
	k, f, err := s.begin(ctx, req.Name, &s.calls)
	if err != nil {
		return nil, err
	}
	var digest []byte
	switch algorithm(k) {
	case kmspb.CryptoKeyVersion_EC_SIGN_P384_SHA384:
		digest = req.GetDigest().GetSha384()
	default:
		digest = req.GetDigest().GetSha256()
	}
	if len(digest) == 0 {
		return nil, status.Errorf(codes.InvalidArgument, "kmsfake: digest type does not match %s", algorithm(k))
	}
	verified := req.DigestCrc32C != nil
	if verified && req.DigestCrc32C.Value != crc32c(digest).Value {
		return nil, status.Error(codes.InvalidArgument, "kmsfake: digest_crc32c mismatch")
	}
	sig, err := ecdsa.SignASN1(rand.Reader, k, digest)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "kmsfake: %v", err)
	}
	resp := &kmspb.AsymmetricSignResponse{Signature: sig, SignatureCrc32C: crc32c(sig), Name: req.Name,
		VerifiedDigestCrc32C: verified && !f.UnverifiedDigest, ProtectionLevel: kmspb.ProtectionLevel_HSM}
	if f.CorruptSignatureCRC {
		resp.SignatureCrc32C.Value ^= 1
	}
	if f.WrongName {
		resp.Name += "0"
	}
	return resp, nil
}
