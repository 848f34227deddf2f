// Package signer opens the issuing key wherever it lives (a PEM file, a
// PKCS#11 token, Google Cloud KMS) as a rotor.Signer, creates new keys inside
// those backends, and watches a signer's health.
//
// Signers returned by Open and Generate that hold resources (a PKCS#11
// session pool, a gRPC connection) also implement io.Closer; close them at
// shutdown, or hand them to NewMonitored, which closes them with itself.
package signer

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"regexp"

	"github.com/rotor-dev/rotor"
)

// Backend names, as the --signer flag spells them.
const (
	BackendFile   = "file"
	BackendPKCS11 = "pkcs11"
	BackendGCPKMS = "gcpkms"
)

// Algorithm is the kind of key Generate creates.
type Algorithm string

// Algorithms Generate knows. The zero value means ECDSAP256.
const (
	ECDSAP256 Algorithm = "ecdsa-p256"
	ECDSAP384 Algorithm = "ecdsa-p384"
	RSA2048   Algorithm = "rsa-2048"
	RSA3072   Algorithm = "rsa-3072"
)

// Config selects and configures one backend. It holds plain values; the
// wiring fills it from flags and the environment.
type Config struct {
	Backend string // BackendFile, BackendPKCS11 or BackendGCPKMS
	KeyFile string // file: path of the PEM private key
	PKCS11  PKCS11Config
	KMS     KMSConfig
	// Logger receives reconnection and integrity warnings; nil means
	// slog.Default().
	Logger *slog.Logger
}

// PKCS11Config names a key pair on a PKCS#11 token.
type PKCS11Config struct {
	Module     string // path of the PKCS#11 module (.so)
	TokenLabel string
	// PIN is the user PIN. The wiring reads it from a PIN file or
	// ROTOR_PKCS11_PIN, never from a flag; String and LogValue hide it.
	PIN      string
	KeyLabel string // CKA_LABEL of the private and public key objects
	// MaxSessions bounds the session pool (one session is kept for the
	// login); 0 means DefaultPKCS11Sessions. Concurrent signatures beyond
	// the pool wait for a session.
	MaxSessions int
}

// DefaultPKCS11Sessions sizes the session pool so that a busy CA's
// concurrent issuances do not queue for a session; sessions open lazily.
const DefaultPKCS11Sessions = 32

// String describes c without its PIN.
func (c PKCS11Config) String() string {
	return fmt.Sprintf("{Module:%s TokenLabel:%s PIN:[redacted] KeyLabel:%s MaxSessions:%d}",
		c.Module, c.TokenLabel, c.KeyLabel, c.MaxSessions)
}

// LogValue describes c to slog without its PIN.
func (c PKCS11Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("module", c.Module), slog.String("token", c.TokenLabel),
		slog.String("key", c.KeyLabel), slog.Int("max_sessions", c.MaxSessions))
}

var kmsKeyVersion = regexp.MustCompile(`^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+/cryptoKeyVersions/[0-9]+$`)

// Validate reports the first missing or malformed setting for the chosen
// backend.
func (c Config) Validate() error {
	switch c.Backend {
	case BackendFile:
		if c.KeyFile == "" {
			return errors.New("signer file: the key file path is empty")
		}
	case BackendPKCS11:
		p := c.PKCS11
		switch {
		case p.Module == "":
			return errors.New("signer pkcs11: the module path is empty")
		case p.TokenLabel == "":
			return errors.New("signer pkcs11: the token label is empty")
		case p.KeyLabel == "":
			return errors.New("signer pkcs11: the key label is empty")
		case p.PIN == "":
			return errors.New("signer pkcs11: the PIN is empty (give a PIN file or set ROTOR_PKCS11_PIN)")
		case p.MaxSessions < 0 || p.MaxSessions == 1:
			return fmt.Errorf("signer pkcs11: max sessions %d: need 0 (default) or at least 2", p.MaxSessions)
		}
	case BackendGCPKMS:
		if !kmsKeyVersion.MatchString(c.KMS.KeyVersion) {
			return fmt.Errorf("signer gcpkms: key version %q is not projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N", c.KMS.KeyVersion)
		}
	case "":
		return errors.New("signer: no backend chosen (file, pkcs11 or gcpkms)")
	default:
		return fmt.Errorf("signer: unknown backend %q (want file, pkcs11 or gcpkms)", c.Backend)
	}
	return nil
}

func (c Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

// Open returns the signer for an existing key in the configured backend. It
// checks the key can be used (file readable and private, PKCS#11 key found,
// KMS public key fetched and checksummed) but makes no test signature; call
// Check for that.
func Open(ctx context.Context, cfg Config) (rotor.Signer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch cfg.Backend {
	case BackendFile:
		return openFile(ctx, cfg)
	case BackendPKCS11:
		return openPKCS11(ctx, cfg)
	default: // BackendGCPKMS, as Validate passed
		return openKMS(ctx, cfg)
	}
}

// Generate creates a new issuing key of algorithm alg ("" means ECDSAP256)
// inside the configured backend and returns its signer. It never replaces
// an existing key: a file that exists or a PKCS#11 key with the same label
// is an error. Cloud KMS keys are created with gcloud, not here.
func Generate(ctx context.Context, cfg Config, alg Algorithm) (rotor.Signer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if alg == "" {
		alg = ECDSAP256
	}
	switch alg {
	case ECDSAP256, ECDSAP384, RSA2048, RSA3072:
	default:
		return nil, fmt.Errorf("signer: unknown key algorithm %q (want ecdsa-p256, ecdsa-p384, rsa-2048 or rsa-3072)", alg)
	}
	switch cfg.Backend {
	case BackendFile:
		return generateFile(ctx, cfg, alg)
	case BackendPKCS11:
		return generatePKCS11(ctx, cfg, alg)
	default:
		return nil, errors.New("signer gcpkms: keys are not generated here; create an asymmetric-signing key " +
			"with `gcloud kms keys create --purpose asymmetric-signing --default-algorithm ec-sign-p256-sha256` " +
			"and pass its cryptoKeyVersions/N name")
	}
}

// ErrKeyMismatch means a certificate does not certify the signer's key.
var ErrKeyMismatch = errors.New("certificate and signer have different public keys")

// ErrPermanent marks a backend refusal that retrying will not fix: missing
// permission, a missing, disabled or destroyed key. Unlike
// rotor.ESignerUnavailable, an operator has to act.
var ErrPermanent = errors.New("signer backend refused permanently")

// CheckCertificate reports ErrKeyMismatch unless cert's public key is s's,
// so a CA never starts (or reloads) with an issuer certificate whose key it
// cannot sign for.
func CheckCertificate(s rotor.Signer, cert *x509.Certificate) error {
	if !publicKeysEqual(s.Public(), cert.PublicKey) {
		return fmt.Errorf("check issuer certificate %q (serial %s): %w", cert.Subject, cert.SerialNumber, ErrKeyMismatch)
	}
	return nil
}
