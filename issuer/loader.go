package issuer

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/signer"
)

// Loader builds the CA's trust, the issuer with its signer and the bundle,
// from the configured files. The CA uses it at start and for every reload,
// so a reload checks exactly what a start checks.
type Loader struct {
	// Base are the settings from flags, environment and defaults.
	Base Settings
	// Given reports which settings a flag or environment variable set,
	// which the config file may not contradict; nil means none.
	Given func(name string) (source string, ok bool)
	// ConfigFile is --issuer-config, or "".
	ConfigFile string
	BundleFile string
	// PIN is the PKCS#11 PIN from the environment, if any; a PIN file in
	// the settings wins.
	PIN string
	// Monitor tunes the health monitor around each signer.
	Monitor signer.MonitorConfig
	// Metrics, if set, instruments each signer.
	Metrics *signer.Metrics
	Log     *slog.Logger
	// Now is the clock the issuer's chain is verified at; nil means
	// time.Now.
	Now func() time.Time
}

// Loaded is one trust and the signer behind its issuer.
type Loaded struct {
	Trust *rotor.Trust
	// Key signs for Trust's issuer; it is Trust.Issuer.Signer.
	Key *signer.Monitored
	// signerID stands for the signer configuration and, for a key file,
	// its contents: while it stays the same, reloads keep the open signer
	// (and its PKCS#11 sessions or KMS connection).
	signerID string
}

// Close releases the signer's sessions or connection.
func (l *Loaded) Close() { l.Key.Close() }

func (l *Loader) now() time.Time {
	if l.Now == nil {
		return time.Now()
	}
	return l.Now()
}

func (l *Loader) log() *slog.Logger {
	if l.Log == nil {
		return slog.Default()
	}
	return l.Log
}

// Settings are Base overlaid with ConfigFile, checked.
func (l *Loader) Settings() (Settings, error) {
	s := l.Base
	if l.ConfigFile != "" {
		var err error
		if s, err = s.WithFile(l.ConfigFile, l.Given); err != nil {
			return s, err
		}
	}
	return s, s.Validate()
}

// Load builds the trust. With prev set it is a reload: the signer is reused
// if its configuration did not change, and a new one must make a good test
// signature before it may replace the old one. prev is never closed here.
func (l *Loader) Load(ctx context.Context, prev *Loaded) (*Loaded, error) {
	s, err := l.Settings()
	if err != nil {
		return nil, err
	}
	sc, err := s.SignerConfig(l.PIN, l.log())
	if err != nil {
		return nil, err
	}
	next := &Loaded{signerID: signerID(s, sc)}
	reused := prev != nil && prev.signerID == next.signerID
	if reused {
		next.Key = prev.Key
	} else if next.Key, err = l.open(ctx, sc); err != nil {
		return nil, err
	}
	next.Trust, err = LoadTrust(s.IssuerCert, l.BundleFile, next.Key, l.now())
	if err == nil && prev != nil && !reused {
		if err = next.Key.Check(ctx); err != nil {
			err = fmt.Errorf("the new issuing key cannot sign: %w", err)
		}
	}
	if err != nil {
		if !reused {
			next.Close()
		}
		return nil, err
	}
	return next, nil
}

// open opens the backend and wraps it: the metrics inside, so backend
// latency is measured, and the monitor outside, so readiness goes through
// its health tracking.
func (l *Loader) open(ctx context.Context, sc signer.Config) (*signer.Monitored, error) {
	key, err := signer.Open(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("open issuing key: %w", err)
	}
	if l.Metrics != nil {
		key = l.Metrics.Instrument(key)
	}
	mc := l.Monitor
	if mc.Logger == nil {
		mc.Logger = l.log()
	}
	return signer.NewMonitored(key, mc), nil
}

// signerID hashes what identifies an open signer, the PIN included (it
// never leaves this process).
func signerID(s Settings, sc signer.Config) string {
	h := sha256.New()
	fmt.Fprintf(h, "%q %q %q %q %q %q %q %q %q", sc.Backend, sc.KeyFile, sc.PKCS11.Module, sc.PKCS11.TokenLabel,
		sc.PKCS11.KeyLabel, sc.PKCS11.PIN, sc.KMS.KeyVersion, sc.KMS.Endpoint, s.KMSInsecureEndpoint)
	if sc.Backend == signer.BackendFile {
		key, _ := os.ReadFile(sc.KeyFile)
		h.Write(key)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Digest hashes every file the trust is built from, as they are now, so
// the reloader notices a change to any of them (an atomic rename included)
// whatever its modification time says.
func (l *Loader) Digest() string {
	files := []string{l.BundleFile, l.ConfigFile}
	if s, err := l.Settings(); err == nil {
		files = append(files, s.IssuerCert, s.IssuerKey, s.PKCS11PINFile)
	}
	h := sha256.New()
	for _, f := range files {
		if f == "" {
			continue
		}
		data, err := os.ReadFile(f)
		fmt.Fprintf(h, "%q %d %t\n", f, len(data), err == nil)
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// LoadTrust reads the issuer chain and the trust bundle and checks, at
// now, that they fit together and with the key.
func LoadTrust(issuerCertFile, bundleFile string, key rotor.Signer, now time.Time) (*rotor.Trust, error) {
	chain, err := ReadCertificates(issuerCertFile, "issuer certificate")
	if err != nil {
		return nil, err
	}
	if err := signer.CheckCertificate(key, chain[0]); err != nil {
		return nil, err
	}
	issuer, err := rotor.NewIssuer(chain[0], chain[1:], key)
	if err != nil {
		return nil, err
	}
	roots, err := ReadCertificates(bundleFile, "trust bundle")
	if err != nil {
		return nil, err
	}
	bundle, err := rotor.NewBundle(roots)
	if err != nil {
		return nil, err
	}
	return rotor.NewTrust(issuer, bundle, now)
}

// ReadCertificates reads a PEM file of certificates; what names the file
// in errors.
func ReadCertificates(path, what string) ([]*x509.Certificate, error) {
	pemBytes, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	certs, err := rotor.ParseCertificates(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, filepath.Clean(path), err)
	}
	return certs, nil
}
