// Package signer opens the issuing key wherever it lives (a PEM file, a
// PKCS#11 token, Google Cloud KMS) as a Key, creates new keys inside those
// backends, instruments them and watches their health.
//
// Every Key holds what its backend needs (a PKCS#11 session pool, a gRPC
// connection, nothing for a file) and must be closed; the wrappers here
// (Metrics.Instrument, NewMonitored) are Keys too and close what they wrap.
package signer

import (
	"cmp"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"runtime"

	"github.com/rotor-dev/rotor"
)

// Key is an open issuing key: a rotor.Signer that holds its backend's
// resources until Close. Close is safe to call more than once.
type Key interface {
	rotor.Signer
	io.Closer
}

// Backend names, as the --signer flag spells them.
const (
	BackendFile   = "file"
	BackendPKCS11 = "pkcs11"
	BackendGCPKMS = "gcpkms"
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

// Parallelism is how many signatures the backend can make at once: the
// CPUs for a file key, the session pool for PKCS#11, and for Cloud KMS,
// whose signatures wait on the network, as many as a connection carries
// comfortably. The CA sizes its cap on issuances in flight from it.
func (c Config) Parallelism() int {
	switch c.Backend {
	case BackendPKCS11:
		return cmp.Or(c.PKCS11.MaxSessions, DefaultPKCS11Sessions)
	case BackendGCPKMS:
		return 64
	}
	return runtime.GOMAXPROCS(0)
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
func Open(ctx context.Context, cfg Config) (Key, error) {
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

// Generate creates a new issuing key of type kt ("" means ECDSAP256) inside
// the configured backend and returns it. It never replaces an existing key:
// a file that exists or a PKCS#11 key with the same label is an error.
// Cloud KMS keys are created with gcloud, not here. Every rotor.KeyType can
// be a file key; PKCS#11 tokens make the ECDSA and RSA ones.
func Generate(ctx context.Context, cfg Config, kt rotor.KeyType) (Key, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	kt, err := rotor.ParseKeyType(string(kt))
	if err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	switch cfg.Backend {
	case BackendFile:
		return generateFile(ctx, cfg, kt)
	case BackendPKCS11:
		if kt == rotor.Ed25519 {
			return nil, errors.New("signer pkcs11: this backend makes ECDSA and RSA keys; an ed25519 issuing key needs --signer file")
		}
		return generatePKCS11(ctx, cfg, kt)
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
	if !rotor.SamePublicKey(s.Public(), cert.PublicKey) {
		return fmt.Errorf("check issuer certificate %q (serial %s): %w", cert.Subject, cert.SerialNumber, ErrKeyMismatch)
	}
	return nil
}

// checkKey refuses keys a CA should not sign with: kinds
// rotor.SignatureHash does not know, and RSA under 2048 bits.
func checkKey(pub crypto.PublicKey) error {
	if k, ok := pub.(*rsa.PublicKey); ok && k.N.BitLen() < 2048 {
		return fmt.Errorf("RSA key of %d bits is too weak (want at least 2048)", k.N.BitLen())
	}
	_, err := rotor.SignatureHash(pub)
	return err
}
