package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/signer"
)

// trustLoader builds the CA's trust, the issuer with its signer and the
// bundle, from the configured files. serve uses it at start and for every
// reload, so a reload checks exactly what a start checks.
type trustLoader struct {
	base       issuerSettings // from the flags
	configFile string         // --issuer-config, or ""
	bundleFile string
	monitor    signer.MonitorConfig
	metrics    *api.Metrics
	log        *slog.Logger
}

// loaded is one trust and the signer behind its issuer.
type loaded struct {
	trust   *rotor.Trust
	key     *signer.Monitored
	backend rotor.Signer // what key wraps; closed with it
	// signerID stands for the signer configuration and, for a key file,
	// its contents: while it stays the same, reloads keep the open signer
	// (and its PKCS#11 sessions or KMS connection).
	signerID string
}

// close releases the signer's sessions or connection.
func (l *loaded) close() {
	l.key.Close()
	if c, ok := l.backend.(io.Closer); ok {
		c.Close()
	}
}

// settings are the flags overlaid with --issuer-config.
func (l *trustLoader) settings() (issuerSettings, error) {
	s := l.base
	if l.configFile != "" {
		var err error
		if s, err = s.withFile(l.configFile); err != nil {
			return s, err
		}
	}
	return s, s.validate()
}

// load builds the trust. With prev set it is a reload: the signer is
// reused if its configuration did not change, and a new one must make a
// good test signature before it may replace the old one.
func (l *trustLoader) load(ctx context.Context, prev *loaded) (*loaded, error) {
	s, err := l.settings()
	if err != nil {
		return nil, err
	}
	sc, err := s.signerConfig(l.log)
	if err != nil {
		return nil, err
	}
	next := &loaded{signerID: signerID(s, sc)}
	reused := prev != nil && prev.signerID == next.signerID
	if reused {
		next.key, next.backend = prev.key, prev.backend
	} else {
		if next.backend, err = signer.Open(ctx, sc); err != nil {
			return nil, fmt.Errorf("open issuing key: %w", err)
		}
		// The monitor wraps the metrics so that backend latency is
		// measured and /readyz goes through the monitor's health tracking.
		next.key = signer.NewMonitored(l.metrics.Signer(next.backend), l.monitor)
	}
	next.trust, err = loadTrust(s.IssuerCert, l.bundleFile, next.key)
	if err == nil && prev != nil && !reused {
		if err = signer.Check(ctx, next.key); err != nil {
			err = fmt.Errorf("the new issuing key cannot sign: %w", err)
		}
	}
	if err != nil {
		if !reused {
			next.close()
		}
		return nil, err
	}
	return next, nil
}

// signerID hashes what identifies an open signer, the PIN included (it
// never leaves this process).
func signerID(s issuerSettings, sc signer.Config) string {
	h := sha256.New()
	fmt.Fprintf(h, "%q %q %q %q %q %q %q %q %q", sc.Backend, sc.KeyFile, sc.PKCS11.Module, sc.PKCS11.TokenLabel,
		sc.PKCS11.KeyLabel, sc.PKCS11.PIN, sc.KMS.KeyVersion, sc.KMS.Endpoint, s.KMSInsecureEndpoint)
	if sc.Backend == signer.BackendFile {
		key, _ := os.ReadFile(sc.KeyFile)
		h.Write(key)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// digest hashes every file the trust is built from, as they are now, so
// the reloader notices a change to any of them (an atomic rename included)
// whatever its modification time says.
func (l *trustLoader) digest() string {
	files := []string{l.bundleFile, l.configFile}
	if s, err := l.settings(); err == nil {
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

// loadTrust reads the issuer chain and the trust bundle and checks that they
// fit together and with the key.
func loadTrust(issuerCertFile, bundleFile string, key rotor.Signer) (*rotor.Trust, error) {
	chainPEM, err := os.ReadFile(issuerCertFile)
	if err != nil {
		return nil, fmt.Errorf("read issuer certificate: %w", err)
	}
	chain, err := rotor.ParseCertificates(chainPEM)
	if err != nil {
		return nil, fmt.Errorf("issuer certificate %s: %w", issuerCertFile, err)
	}
	if err := signer.CheckCertificate(key, chain[0]); err != nil {
		return nil, err
	}
	issuer, err := rotor.NewIssuer(chain[0], chain[1:], key)
	if err != nil {
		return nil, err
	}
	bundlePEM, err := os.ReadFile(bundleFile)
	if err != nil {
		return nil, fmt.Errorf("read trust bundle: %w", err)
	}
	roots, err := rotor.ParseCertificates(bundlePEM)
	if err != nil {
		return nil, fmt.Errorf("trust bundle %s: %w", filepath.Clean(bundleFile), err)
	}
	bundle, err := rotor.NewBundle(roots)
	if err != nil {
		return nil, err
	}
	return rotor.NewTrust(issuer, bundle, time.Now())
}
