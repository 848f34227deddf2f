package issuer

import (
	"os"
	"path/filepath"
	"testing"
)

// TestFromInit: serve finds the CA init made in the data directory by its
// issuer.conf; a directory without one, or whose file-key issuer is gone,
// is the development CA's to make.
func TestFromInit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		conf    string // "" for none
		ok      bool
		wantErr bool
	}{
		{name: "ok/none"},
		{name: "ok/file-signer", conf: "issuer-cert=issuer.crt\nsigner=file\nissuer-key=issuer.key\n", ok: true},
		{name: "ok/file-signer-issuer-gone", conf: "issuer-cert=gone.crt\nsigner=file\nissuer-key=issuer.key\n"},
		{name: "ok/pkcs11", conf: "issuer-cert=issuer.crt\nsigner=pkcs11\npkcs11-module=/usr/lib/softhsm/libsofthsm2.so\n", ok: true},
		{name: "ok/gcpkms", conf: "issuer-cert=issuer.crt\nsigner=gcpkms\n", ok: true},
		{name: "fail/unparsable", conf: "signer pkcs11\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if tt.conf != "" {
				if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(tt.conf), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(dir, IssuerCertFile), []byte("not read"), 0o644); err != nil {
				t.Fatal(err)
			}
			conf, bundle, _, ok, err := FromInit(dir)
			if (err != nil) != tt.wantErr || ok != tt.ok {
				t.Fatalf("FromInit = %v, %v; want ok %v, error %v", ok, err, tt.ok, tt.wantErr)
			}
			if ok && (conf != filepath.Join(dir, ConfigFile) || bundle != filepath.Join(dir, BundleFile)) {
				t.Errorf("FromInit = %s, %s; want the data directory's %s and %s", conf, bundle, ConfigFile, BundleFile)
			}
		})
	}
}
