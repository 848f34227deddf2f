package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/rotor-dev/rotor/signer"
)

// issuerSettings say which issuing CA the CA signs as: its certificate and
// where its key lives. serve and init take them as flags; serve also reads
// them from --issuer-config, a file of the same names that it re-reads on
// SIGHUP and when it changes, so one atomic file write switches issuers.
type issuerSettings struct {
	IssuerCert          string
	IssuerKey           string
	Signer              string
	PKCS11Module        string
	PKCS11Token         string
	PKCS11PINFile       string
	PKCS11KeyLabel      string
	KMSKey              string
	KMSEndpoint         string
	KMSInsecureEndpoint string
}

// register adds the settings as flags; withCert adds --issuer-cert, which
// init does not take (it writes the certificate).
func (s *issuerSettings) register(fs *flag.FlagSet, withCert bool) {
	if withCert {
		fs.StringVar(&s.IssuerCert, "issuer-cert", "", "issuing CA certificate PEM, followed by any intermediates above it (default: <data-dir>/issuer.crt, created on first start)")
	}
	fs.StringVar(&s.IssuerKey, "issuer-key", "", "issuing CA private key PEM, --signer file (default: <data-dir>/issuer.key)")
	fs.StringVar(&s.Signer, "signer", signer.BackendFile, "where the issuing key lives: file, pkcs11 or gcpkms")
	fs.StringVar(&s.PKCS11Module, "pkcs11-module", "", "PKCS#11 module path, e.g. /usr/lib/softhsm/libsofthsm2.so (--signer pkcs11)")
	fs.StringVar(&s.PKCS11Token, "pkcs11-token", "", "PKCS#11 token label (--signer pkcs11)")
	fs.StringVar(&s.PKCS11PINFile, "pkcs11-pin-file", "", "file holding the token's user PIN; or set ROTOR_PKCS11_PIN (never a flag value, which ps would show)")
	fs.StringVar(&s.PKCS11KeyLabel, "pkcs11-key-label", "rotor-issuer", "label of the issuing key pair on the token (--signer pkcs11)")
	fs.StringVar(&s.KMSKey, "kms-key", "", "Cloud KMS key version: projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N (--signer gcpkms)")
	fs.StringVar(&s.KMSEndpoint, "kms-endpoint", "", "Cloud KMS endpoint override, host:port (--signer gcpkms)")
	fs.StringVar(&s.KMSInsecureEndpoint, "kms-insecure-endpoint", "", "plaintext, unauthenticated gRPC to a Cloud KMS emulator on a loopback IP, e.g. 127.0.0.1:9010; for tests only (--signer gcpkms)")
}

// issuerConfigNames are the settings an --issuer-config file may hold: the
// flag names, without dashes in front.
var issuerConfigNames = []string{"issuer-cert", "issuer-key", "signer", "pkcs11-module", "pkcs11-token",
	"pkcs11-pin-file", "pkcs11-key-label", "kms-key", "kms-endpoint", "kms-insecure-endpoint"}

// withFile returns s overlaid with the settings in an --issuer-config file:
// "name=value" lines, '#' comments. A setting in the file wins over its
// flag; relative file paths in it are relative to the file. The PIN is
// never in it: only pkcs11-pin-file, its path.
func (s issuerSettings) withFile(path string) (issuerSettings, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return s, fmt.Errorf("issuer config: %w", err)
	}
	fs := flag.NewFlagSet("issuer-config", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	// register resets the fields to the flags' defaults; put back the
	// values given, so settings the file does not name keep them.
	given := s
	s.register(fs, true)
	s = given
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || fs.Lookup(name) == nil {
			return s, fmt.Errorf("issuer config %s line %d: want name=value with name one of %s", path, n,
				strings.Join(issuerConfigNames, ", "))
		}
		switch name {
		case "issuer-cert", "issuer-key", "pkcs11-pin-file":
			// Relative to the file, so a directory of issuer files can be
			// mounted anywhere (a Kubernetes ConfigMap and Secret).
			if value != "" && !filepath.IsAbs(value) {
				value = filepath.Join(filepath.Dir(path), value)
			}
		}
		if err := fs.Set(name, value); err != nil {
			return s, fmt.Errorf("issuer config %s line %d: %w", path, n, err)
		}
	}
	return s, sc.Err()
}

// encode writes s as an --issuer-config file: the settings its backend
// uses, after a comment header.
func (s issuerSettings) encode(header string) []byte {
	var b bytes.Buffer
	for _, line := range strings.Split(header, "\n") {
		fmt.Fprintf(&b, "# %s\n", line)
	}
	for _, kv := range s.pairs() {
		fmt.Fprintf(&b, "%s=%s\n", kv[0], kv[1])
	}
	return b.Bytes()
}

// flags is s as serve's command-line flags.
func (s issuerSettings) flags() []string {
	var args []string
	for _, kv := range s.pairs() {
		args = append(args, "--"+kv[0], kv[1])
	}
	return args
}

// pairs lists the non-empty settings the chosen backend reads.
func (s issuerSettings) pairs() [][2]string {
	all := [][2]string{{"issuer-cert", s.IssuerCert}, {"signer", s.Signer}}
	switch s.Signer {
	case signer.BackendFile:
		all = append(all, [2]string{"issuer-key", s.IssuerKey})
	case signer.BackendPKCS11:
		all = append(all, [2]string{"pkcs11-module", s.PKCS11Module}, [2]string{"pkcs11-token", s.PKCS11Token},
			[2]string{"pkcs11-key-label", s.PKCS11KeyLabel}, [2]string{"pkcs11-pin-file", s.PKCS11PINFile})
	case signer.BackendGCPKMS:
		all = append(all, [2]string{"kms-key", s.KMSKey}, [2]string{"kms-endpoint", s.KMSEndpoint},
			[2]string{"kms-insecure-endpoint", s.KMSInsecureEndpoint})
	}
	var out [][2]string
	for _, kv := range all {
		if kv[1] != "" {
			out = append(out, kv)
		}
	}
	return out
}

// validate checks the settings as a whole; the backend's own checks follow
// in signerConfig.
func (s issuerSettings) validate() error {
	if s.IssuerCert == "" {
		return errors.New("no issuer certificate: give --issuer-cert or issuer-cert in --issuer-config")
	}
	return s.validateKey()
}

// validateKey checks where the key lives, whatever the certificate.
func (s issuerSettings) validateKey() error {
	switch {
	case s.Signer == signer.BackendFile && s.IssuerKey == "":
		return errors.New("--signer file needs --issuer-key (or issuer-key in --issuer-config)")
	case s.Signer != signer.BackendFile && s.IssuerKey != "":
		return fmt.Errorf("--issuer-key is for --signer file; the %s backend holds the key itself", s.Signer)
	}
	return s.checkInsecureEndpoint()
}

// checkInsecureEndpoint allows plaintext KMS only to a loopback IP literal:
// a name could resolve elsewhere, and anything off the machine could be
// intercepted.
func (s issuerSettings) checkInsecureEndpoint() error {
	ep := s.KMSInsecureEndpoint
	if ep == "" {
		return nil
	}
	if s.Signer != signer.BackendGCPKMS || s.KMSEndpoint != "" {
		return errors.New("--kms-insecure-endpoint goes with --signer gcpkms and instead of --kms-endpoint")
	}
	host, _, err := net.SplitHostPort(ep)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--kms-insecure-endpoint %q: only a loopback IP and port (127.0.0.1:PORT, [::1]:PORT) is allowed", ep)
	}
	return nil
}

// signerConfig is the issuing key's backend configuration. The PIN comes
// from the PIN file or ROTOR_PKCS11_PIN, never from a flag.
func (s issuerSettings) signerConfig(log *slog.Logger) (signer.Config, error) {
	sc := signer.Config{Backend: s.Signer, KeyFile: s.IssuerKey, Logger: log,
		PKCS11: signer.PKCS11Config{Module: s.PKCS11Module, TokenLabel: s.PKCS11Token, KeyLabel: s.PKCS11KeyLabel},
		KMS:    signer.KMSConfig{KeyVersion: s.KMSKey, Endpoint: s.KMSEndpoint}}
	if s.Signer == signer.BackendPKCS11 {
		sc.PKCS11.PIN = os.Getenv("ROTOR_PKCS11_PIN")
		if s.PKCS11PINFile != "" {
			pin, err := os.ReadFile(s.PKCS11PINFile)
			if err != nil {
				return signer.Config{}, fmt.Errorf("read --pkcs11-pin-file: %w", err)
			}
			sc.PKCS11.PIN = strings.TrimSpace(string(pin))
		}
	}
	if err := s.checkInsecureEndpoint(); err != nil {
		return signer.Config{}, err
	}
	if ep := s.KMSInsecureEndpoint; ep != "" {
		sc.KMS.ClientOptions = []option.ClientOption{option.WithEndpoint(ep), option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials()))}
		log.Warn("Cloud KMS over plaintext gRPC without credentials: an emulator for tests, never production",
			"kms_insecure_endpoint", ep)
	}
	return sc, sc.Validate()
}
