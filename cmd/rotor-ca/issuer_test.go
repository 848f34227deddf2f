package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestIssuerConfigFile: a setting in --issuer-config wins over its flag,
// one it does not name keeps the flag's value, and anything but known
// name=value lines is refused.
func TestIssuerConfigFile(t *testing.T) {
	t.Parallel()
	flags := issuerSettings{IssuerCert: "/flag/issuer.crt", Signer: "pkcs11", PKCS11Module: "/flag/module.so",
		PKCS11PINFile: "/flag/pin", PKCS11KeyLabel: "flag-label"}
	tests := []struct {
		name    string
		file    string
		want    issuerSettings
		wantErr bool
	}{
		{name: "ok/file-wins-flags-kept", file: "# comment\n\nissuer-cert = /file/issuer.crt\npkcs11-key-label=issuer-2\n",
			want: issuerSettings{IssuerCert: "/file/issuer.crt", Signer: "pkcs11", PKCS11Module: "/flag/module.so",
				PKCS11PINFile: "/flag/pin", PKCS11KeyLabel: "issuer-2"}},
		{name: "ok/relative-to-the-file", file: "issuer-cert=issuer.crt\nsigner=file\nissuer-key=keys/issuer.key\n",
			want: issuerSettings{IssuerCert: "DIR/issuer.crt", Signer: "file", IssuerKey: "DIR/keys/issuer.key",
				PKCS11Module: "/flag/module.so", PKCS11PINFile: "/flag/pin", PKCS11KeyLabel: "flag-label"}},
		{name: "ok/empty", file: "", want: flags},
		{name: "ok/round-trip", file: string(flags.encode("written\nby a test")), want: flags},
		{name: "fail/unknown-name", file: "issuer-crt=/x\n", wantErr: true},
		{name: "fail/a-non-issuer-flag", file: "listen=0.0.0.0:1\n", wantErr: true},
		{name: "fail/no-equals", file: "issuer-cert /x\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "issuer.conf")
			if err := os.WriteFile(path, []byte(tt.file), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := flags.withFile(path)
			if (err != nil) != tt.wantErr {
				t.Fatalf("withFile: %v, want error %v", err, tt.wantErr)
			}
			dir := filepath.Dir(path)
			for _, p := range []*string{&tt.want.IssuerCert, &tt.want.IssuerKey} {
				*p = strings.Replace(*p, "DIR", dir, 1)
			}
			if !tt.wantErr && got != tt.want {
				t.Fatalf("withFile =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}
