// Package issuer is the CA's trust lifecycle: which issuing CA it signs as
// (Settings, and the --issuer-config file that holds them), loading that
// issuer with its signer and the trust bundle (Loader), swapping them while
// requests are in flight (Reloader), making new CAs (CreateCA, the
// development PKI) and the CA's own serving certificate (ServingCert).
// rotor-ca wires it; everything here takes plain values and an injected
// clock, so it is tested without a process.
package issuer

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
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

// ErrSettings marks issuer settings that cannot work as given: the
// caller's configuration to fix, not an outage.
var ErrSettings = errors.New("invalid issuer settings")

func settingsErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrSettings, fmt.Sprintf(format, args...))
}

// Settings say which issuing CA the CA signs as: its certificate and where
// its key lives. rotor-ca serve and init take them as flags; serve also
// reads them from an --issuer-config file of the same names, re-read on
// SIGHUP and when it changes, so one atomic file write switches issuers.
type Settings struct {
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

// setting is one row of the settings table: its flag and file name, its
// default and help, where it lives in Settings, and the backend it
// configures ("" for all).
type setting struct {
	name, def, usage string
	field            func(*Settings) *string
	backend          string
	path             bool // a file path: relative ones in a file are relative to it
}

// settings is the one table of issuer settings. Flags, the file format and
// the serve command init prints are all made from it.
var settings = []setting{
	{"issuer-cert", "", "issuing CA certificate PEM, followed by any intermediates above it (default: <data-dir>/issuer.crt, created on first start)",
		func(s *Settings) *string { return &s.IssuerCert }, "", true},
	{"signer", signer.BackendFile, "where the issuing key lives: file, pkcs11 or gcpkms",
		func(s *Settings) *string { return &s.Signer }, "", false},
	{"issuer-key", "", "issuing CA private key PEM, --signer file (default: <data-dir>/issuer.key)",
		func(s *Settings) *string { return &s.IssuerKey }, signer.BackendFile, true},
	{"pkcs11-module", "", "PKCS#11 module path, e.g. /usr/lib/softhsm/libsofthsm2.so (--signer pkcs11)",
		func(s *Settings) *string { return &s.PKCS11Module }, signer.BackendPKCS11, false},
	{"pkcs11-token", "", "PKCS#11 token label (--signer pkcs11)",
		func(s *Settings) *string { return &s.PKCS11Token }, signer.BackendPKCS11, false},
	{"pkcs11-key-label", "rotor-issuer", "label of the issuing key pair on the token (--signer pkcs11)",
		func(s *Settings) *string { return &s.PKCS11KeyLabel }, signer.BackendPKCS11, false},
	{"pkcs11-pin-file", "", "file holding the token's user PIN; or set ROTOR_PKCS11_PIN (never a flag value, which ps would show)",
		func(s *Settings) *string { return &s.PKCS11PINFile }, signer.BackendPKCS11, true},
	{"kms-key", "", "Cloud KMS key version: projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N (--signer gcpkms)",
		func(s *Settings) *string { return &s.KMSKey }, signer.BackendGCPKMS, false},
	{"kms-endpoint", "", "Cloud KMS endpoint override, host:port (--signer gcpkms)",
		func(s *Settings) *string { return &s.KMSEndpoint }, signer.BackendGCPKMS, false},
	{"kms-insecure-endpoint", "", "plaintext, unauthenticated gRPC to a Cloud KMS emulator on a loopback IP, e.g. 127.0.0.1:9010; for tests only (--signer gcpkms)",
		func(s *Settings) *string { return &s.KMSInsecureEndpoint }, signer.BackendGCPKMS, false},
}

// Names lists the settings' names, as flags and file lines spell them.
func Names() []string {
	names := make([]string, len(settings))
	for i, st := range settings {
		names[i] = st.name
	}
	return names
}

// RegisterFlags adds the settings to fs as flags writing to s; withCert
// adds --issuer-cert, which init does not take (it writes the certificate).
func (s *Settings) RegisterFlags(fs *flag.FlagSet, withCert bool) {
	for _, st := range settings {
		if st.name == "issuer-cert" && !withCert {
			continue
		}
		fs.StringVar(st.field(s), st.name, st.def, st.usage)
	}
}

// Defaults are the settings with nothing given.
func Defaults() Settings {
	var s Settings
	for _, st := range settings {
		*st.field(&s) = st.def
	}
	return s
}

// WithFile returns s overlaid with the settings in an --issuer-config
// file: "name=value" lines, '#' comments. A file setting replaces a
// default; one that given reports as set by a flag or environment
// variable must agree with it, or the file is refused, since a silently
// ignored line is how an issuer switch fails unnoticed. Relative paths in
// the file are relative to the file, so a directory of issuer files can be
// mounted anywhere (a Kubernetes ConfigMap and Secret). The PIN is never
// in it: only pkcs11-pin-file, its path. given may be nil.
func (s Settings) WithFile(path string, given func(name string) (source string, ok bool)) (Settings, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return s, fmt.Errorf("issuer config: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		st, known := lookup(name)
		if !ok || !known {
			return s, settingsErr("issuer config %s line %d: want name=value with name one of %s", path, n,
				strings.Join(Names(), ", "))
		}
		if st.path && value != "" && !filepath.IsAbs(value) {
			value = filepath.Join(filepath.Dir(path), value)
		}
		field := st.field(&s)
		if given != nil {
			if source, set := given(name); set && *field != value {
				return s, settingsErr("issuer config %s line %d: %s is %q there but %q by %s; set it in one place",
					path, n, name, value, *field, source)
			}
		}
		*field = value
	}
	return s, sc.Err()
}

func lookup(name string) (setting, bool) {
	for _, st := range settings {
		if st.name == name {
			return st, true
		}
	}
	return setting{}, false
}

// Encode writes s as an --issuer-config file: the settings its backend
// uses, after a comment header.
func (s Settings) Encode(header string) []byte {
	var b bytes.Buffer
	for _, line := range strings.Split(header, "\n") {
		fmt.Fprintf(&b, "# %s\n", line)
	}
	for _, kv := range s.pairs() {
		fmt.Fprintf(&b, "%s=%s\n", kv[0], kv[1])
	}
	return b.Bytes()
}

// Flags is s as serve's command-line flags.
func (s Settings) Flags() []string {
	var args []string
	for _, kv := range s.pairs() {
		args = append(args, "--"+kv[0], kv[1])
	}
	return args
}

// pairs lists the non-empty settings the chosen backend reads.
func (s Settings) pairs() [][2]string {
	var out [][2]string
	for _, st := range settings {
		if v := *st.field(&s); v != "" && (st.backend == "" || st.backend == s.Signer) {
			out = append(out, [2]string{st.name, v})
		}
	}
	return out
}

// Validate checks the settings as a whole; the backend's own checks follow
// in SignerConfig.
func (s Settings) Validate() error {
	if s.IssuerCert == "" {
		return settingsErr("no issuer certificate: give --issuer-cert or issuer-cert in --issuer-config")
	}
	return s.validateKey()
}

// validateKey checks where the key lives, whatever the certificate.
func (s Settings) validateKey() error {
	switch {
	case s.Signer == signer.BackendFile && s.IssuerKey == "":
		return settingsErr("--signer file needs --issuer-key (or issuer-key in --issuer-config)")
	case s.Signer != signer.BackendFile && s.IssuerKey != "":
		return settingsErr("--issuer-key is for --signer file; the %s backend holds the key itself", s.Signer)
	}
	return s.checkInsecureEndpoint()
}

// checkInsecureEndpoint allows plaintext KMS only to a loopback IP literal:
// a name could resolve elsewhere, and anything off the machine could be
// intercepted.
func (s Settings) checkInsecureEndpoint() error {
	ep := s.KMSInsecureEndpoint
	if ep == "" {
		return nil
	}
	if s.Signer != signer.BackendGCPKMS || s.KMSEndpoint != "" {
		return settingsErr("--kms-insecure-endpoint goes with --signer gcpkms and instead of --kms-endpoint")
	}
	host, _, err := net.SplitHostPort(ep)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return settingsErr("--kms-insecure-endpoint %q: only a loopback IP and port (127.0.0.1:PORT, [::1]:PORT) is allowed", ep)
	}
	return nil
}

// SignerConfig is the issuing key's backend configuration. The PIN comes
// from the PIN file, else pin (the environment's, which the wiring reads):
// never from a flag.
func (s Settings) SignerConfig(pin string, log *slog.Logger) (signer.Config, error) {
	sc := signer.Config{Backend: s.Signer, KeyFile: s.IssuerKey, Logger: log,
		PKCS11: signer.PKCS11Config{Module: s.PKCS11Module, TokenLabel: s.PKCS11Token, KeyLabel: s.PKCS11KeyLabel},
		KMS:    signer.KMSConfig{KeyVersion: s.KMSKey, Endpoint: s.KMSEndpoint}}
	if s.Signer == signer.BackendPKCS11 {
		sc.PKCS11.PIN = pin
		if s.PKCS11PINFile != "" {
			b, err := os.ReadFile(s.PKCS11PINFile)
			if err != nil {
				return signer.Config{}, fmt.Errorf("read --pkcs11-pin-file: %w", err)
			}
			sc.PKCS11.PIN = strings.TrimSpace(string(b))
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
	if err := sc.Validate(); err != nil {
		return signer.Config{}, fmt.Errorf("%w: %v", ErrSettings, err)
	}
	return sc, nil
}
