package issuer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWithFile: a setting in --issuer-config replaces its default, one the
// file does not name keeps the value it had, one a flag or variable also
// gives must agree with it, and anything but known name=value lines is
// refused.
func TestWithFile(t *testing.T) {
	t.Parallel()
	flags := Settings{IssuerCert: "/flag/issuer.crt", Signer: "pkcs11", PKCS11Module: "/flag/module.so",
		PKCS11PINFile: "/flag/pin", PKCS11KeyLabel: "flag-label"}
	given := func(names ...string) func(string) (string, bool) {
		return func(n string) (string, bool) {
			for _, g := range names {
				if g == n {
					return "--" + n, true
				}
			}
			return "", false
		}
	}
	tests := []struct {
		name    string
		file    string
		given   func(string) (string, bool)
		want    Settings
		wantErr string
	}{
		{name: "ok/file-wins-over-defaults", file: "# comment\n\nissuer-cert = /file/issuer.crt\npkcs11-key-label=issuer-2\n",
			want: Settings{IssuerCert: "/file/issuer.crt", Signer: "pkcs11", PKCS11Module: "/flag/module.so",
				PKCS11PINFile: "/flag/pin", PKCS11KeyLabel: "issuer-2"}},
		{name: "ok/relative-to-the-file", file: "issuer-cert=issuer.crt\nsigner=file\nissuer-key=keys/issuer.key\n",
			want: Settings{IssuerCert: "DIR/issuer.crt", Signer: "file", IssuerKey: "DIR/keys/issuer.key",
				PKCS11Module: "/flag/module.so", PKCS11PINFile: "/flag/pin", PKCS11KeyLabel: "flag-label"}},
		{name: "ok/empty", file: "", want: flags},
		{name: "ok/round-trip", file: string(flags.Encode("written\nby a test")), want: flags},
		{name: "ok/flag-and-file-agree", file: "pkcs11-module=/flag/module.so\n", given: given("pkcs11-module"), want: flags},
		{name: "fail/flag-and-file-differ", file: "pkcs11-key-label=issuer-2\n", given: given("pkcs11-key-label"),
			wantErr: `pkcs11-key-label is "issuer-2" there but "flag-label" by --pkcs11-key-label`},
		{name: "fail/unknown-name", file: "issuer-crt=/x\n", wantErr: "want name=value"},
		{name: "fail/a-non-issuer-flag", file: "listen=0.0.0.0:1\n", wantErr: "want name=value"},
		{name: "fail/no-equals", file: "issuer-cert /x\n", wantErr: "want name=value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "issuer.conf")
			if err := os.WriteFile(path, []byte(tt.file), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := flags.WithFile(path, tt.given)
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrSettings) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("WithFile error %v, want ErrSettings saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Dir(path)
			for _, p := range []*string{&tt.want.IssuerCert, &tt.want.IssuerKey} {
				*p = strings.Replace(*p, "DIR", dir, 1)
			}
			if got != tt.want {
				t.Fatalf("WithFile =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

// TestSettingsChecks: settings that cannot work are ErrSettings, before
// any backend is touched.
func TestSettingsChecks(t *testing.T) {
	t.Parallel()
	kms := "projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1"
	tests := []struct {
		name string
		s    Settings
	}{
		{"fail/no-certificate", Settings{Signer: "file", IssuerKey: "/k"}},
		{"fail/file-without-key", Settings{IssuerCert: "/c", Signer: "file"}},
		{"fail/key-file-with-pkcs11", Settings{IssuerCert: "/c", Signer: "pkcs11", IssuerKey: "/k"}},
		{"fail/kms-insecure-not-loopback", Settings{IssuerCert: "/c", Signer: "gcpkms", KMSKey: kms, KMSInsecureEndpoint: "10.0.0.1:443"}},
		{"fail/kms-insecure-by-name", Settings{IssuerCert: "/c", Signer: "gcpkms", KMSKey: kms, KMSInsecureEndpoint: "localhost:443"}},
		{"fail/kms-insecure-and-endpoint", Settings{IssuerCert: "/c", Signer: "gcpkms", KMSKey: kms, KMSInsecureEndpoint: "127.0.0.1:1", KMSEndpoint: "kms:443"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.s.Validate(); !errors.Is(err, ErrSettings) {
				t.Errorf("Validate = %v, want ErrSettings", err)
			}
		})
	}
	for _, s := range []Settings{{Signer: "vault"}, {Signer: "pkcs11", PKCS11Module: "/m.so", PKCS11Token: "t", PKCS11KeyLabel: "k"}} {
		if _, err := s.SignerConfig("", nil); !errors.Is(err, ErrSettings) {
			t.Errorf("SignerConfig(%+v) = %v, want ErrSettings", s, err)
		}
	}
}
