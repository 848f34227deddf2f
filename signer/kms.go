package signer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"time"

	kms "cloud.google.com/go/kms/apiv1"
	"cloud.google.com/go/kms/apiv1/kmspb"
	"github.com/googleapis/gax-go/v2"
	"github.com/rotor-dev/rotor"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// KMSConfig names a Cloud KMS asymmetric-signing key version.
type KMSConfig struct {
	// KeyVersion is projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N.
	KeyVersion string
	// Endpoint overrides the KMS endpoint (host:port), e.g. a regional or
	// private one; empty means the default.
	Endpoint string
	// ClientOptions are passed to the client after Endpoint. Without them
	// the client uses Application Default Credentials.
	ClientOptions []option.ClientOption
}

// kmsSigner signs through Cloud KMS AsymmetricSign. The public key is
// fetched once at Open; every response is checked end to end with CRC32C.
type kmsSigner struct {
	client *kms.KeyManagementClient
	name   string
	pub    crypto.PublicKey
	hash   crypto.Hash
	log    *slog.Logger
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc32c(b []byte) int64 { return int64(crc32.Checksum(b, castagnoli)) }

// noRetry turns off the library's own retries (60 s of backoff on
// Unavailable): an issuance should fail fast with ESignerUnavailable and let
// its caller, who knows its deadline, decide to retry.
var noRetry = gax.WithRetry(func() gax.Retryer { return nil })

// kmsReconnectMaxDelay caps gRPC's wait between attempts to reconnect to
// the KMS. Its default grows by 1.6 per failed attempt up to 120s, so after
// a long outage the client went on refusing to sign for up to two minutes
// once the KMS was back, while the breaker (Monitored) probes every 5s at
// most. Capped below that, the breaker decides when the CA signs again; an
// attempt every 2s is nothing for the KMS.
const kmsReconnectMaxDelay = 2 * time.Second

// kmsConnect is gRPC's default reconnection backoff and connect timeout
// with the cap above.
func kmsConnect() grpc.ConnectParams {
	b := backoff.DefaultConfig
	b.MaxDelay = kmsReconnectMaxDelay
	return grpc.ConnectParams{Backoff: b, MinConnectTimeout: 20 * time.Second}
}

func openKMS(ctx context.Context, cfg Config) (Key, error) {
	c := cfg.KMS
	opts := []option.ClientOption{option.WithGRPCDialOption(grpc.WithConnectParams(kmsConnect()))}
	if c.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(c.Endpoint))
	}
	opts = append(opts, c.ClientOptions...)
	client, err := kms.NewKeyManagementClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("signer gcpkms: create client: %w", err)
	}
	s := &kmsSigner{client: client, name: c.KeyVersion, log: cfg.logger()}
	if err := s.loadPublicKey(ctx); err != nil {
		client.Close()
		return nil, err
	}
	return s, nil
}

func (s *kmsSigner) loadPublicKey(ctx context.Context) error {
	resp, err := s.client.GetPublicKey(ctx, &kmspb.GetPublicKeyRequest{Name: s.name})
	if err != nil {
		return kmsError(err, "get public key of %s", s.name)
	}
	if resp.Name != s.name {
		return fmt.Errorf("signer gcpkms: asked for the public key of %s, got %s", s.name, resp.Name)
	}
	if resp.PemCrc32C == nil || resp.PemCrc32C.Value != crc32c([]byte(resp.Pem)) {
		return fmt.Errorf("signer gcpkms: public key of %s was corrupted in transit (pem_crc32c mismatch)", s.name)
	}
	var curve elliptic.Curve
	switch resp.Algorithm {
	case kmspb.CryptoKeyVersion_EC_SIGN_P256_SHA256:
		curve, s.hash = elliptic.P256(), crypto.SHA256
	case kmspb.CryptoKeyVersion_EC_SIGN_P384_SHA384:
		curve, s.hash = elliptic.P384(), crypto.SHA384
	default:
		return fmt.Errorf("signer gcpkms: %s has algorithm %s; want EC_SIGN_P256_SHA256 or EC_SIGN_P384_SHA384", s.name, resp.Algorithm)
	}
	b, _ := pem.Decode([]byte(resp.Pem))
	if b == nil || b.Type != "PUBLIC KEY" {
		return fmt.Errorf("signer gcpkms: public key of %s is not a PEM PUBLIC KEY", s.name)
	}
	pub, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return fmt.Errorf("signer gcpkms: parse public key of %s: %w", s.name, err)
	}
	if k, ok := pub.(*ecdsa.PublicKey); !ok || k.Curve != curve {
		return fmt.Errorf("signer gcpkms: public key of %s does not match its algorithm %s", s.name, resp.Algorithm)
	}
	s.pub = pub
	return nil
}

// Public implements rotor.Signer with the key fetched at Open.
func (s *kmsSigner) Public() crypto.PublicKey { return s.pub }

// Sign implements rotor.Signer. gRPC honours ctx. A response that fails an
// integrity check is ESignerUnavailable (a retry may well succeed) and is
// logged, as it means corruption between here and the KMS.
func (s *kmsSigner) Sign(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts.HashFunc() != s.hash || len(digest) != s.hash.Size() {
		return nil, fmt.Errorf("signer gcpkms: %s signs %s digests; got %s with %d bytes", s.name, s.hash, opts.HashFunc(), len(digest))
	}
	d := &kmspb.Digest{}
	if s.hash == crypto.SHA384 {
		d.Digest = &kmspb.Digest_Sha384{Sha384: digest}
	} else {
		d.Digest = &kmspb.Digest_Sha256{Sha256: digest}
	}
	resp, err := s.client.AsymmetricSign(ctx, &kmspb.AsymmetricSignRequest{
		Name: s.name, Digest: d, DigestCrc32C: wrapperspb.Int64(crc32c(digest)),
	}, noRetry)
	if err != nil {
		return nil, kmsError(err, "sign with %s", s.name)
	}
	var bad string
	switch {
	case resp.Name != s.name:
		bad = "response names key version " + resp.Name
	case !resp.VerifiedDigestCrc32C:
		bad = "KMS did not verify the digest's CRC32C"
	case resp.SignatureCrc32C == nil || resp.SignatureCrc32C.Value != crc32c(resp.Signature):
		bad = "signature CRC32C mismatch"
	}
	if bad != "" {
		s.log.Error("Cloud KMS signature failed its integrity check; discarded", "key_version", s.name, "reason", bad)
		return nil, rotor.WrapError(rotor.ESignerUnavailable, errors.New(bad), "Cloud KMS response failed an integrity check")
	}
	return resp.Signature, nil
}

// Close releases the gRPC connection.
func (s *kmsSigner) Close() error { return s.client.Close() }

// kmsError maps gRPC codes: outages and overload are ESignerUnavailable;
// refusals an operator must fix wrap ErrPermanent with a hint.
func kmsError(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Internal,
		codes.Aborted, codes.Canceled, codes.Unknown:
		return rotor.WrapError(rotor.ESignerUnavailable, err, "Cloud KMS unavailable")
	case codes.PermissionDenied, codes.Unauthenticated:
		return fmt.Errorf("signer gcpkms: %s: permission denied; grant the CA's identity roles/cloudkms.signerVerifier on the key: %w: %w", what, ErrPermanent, err)
	case codes.NotFound:
		return fmt.Errorf("signer gcpkms: %s: no such key version: %w: %w", what, ErrPermanent, err)
	case codes.FailedPrecondition:
		return fmt.Errorf("signer gcpkms: %s: key version not enabled (disabled, destroyed or pending): %w: %w", what, ErrPermanent, err)
	}
	return fmt.Errorf("signer gcpkms: %s: %w", what, err)
}
