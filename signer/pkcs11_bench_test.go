//go:build cgo

package signer

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/testenv"
)

// benchPKCS11Signer makes a SoftHSM2 token with a P-256 key. It repeats
// testenv.NewSoftHSM, which takes a *testing.T, for a benchmark.
func benchPKCS11Signer(b *testing.B) rotor.Signer {
	module := os.Getenv(testenv.PKCS11ModuleEnv)
	if module == "" {
		module = testenv.DefaultSoftHSMModule
	}
	if _, err := os.Stat(module); err != nil {
		testenv.Unavailable(b, "the SoftHSM2 PKCS#11 module", "apt-get install -y softhsm2")
	}
	dir := b.TempDir()
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+dir+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	b.Setenv("SOFTHSM2_CONF", conf)
	if out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", "bench", "--pin", "1234", "--so-pin", "5678").CombinedOutput(); err != nil {
		testenv.Unavailable(b, "softhsm2-util", string(out))
	}
	cfg := Config{Backend: BackendPKCS11, PKCS11: PKCS11Config{Module: module, TokenLabel: "bench", PIN: "1234", KeyLabel: "issuer"}}
	s, err := Generate(context.Background(), cfg, ECDSAP256)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.(*pkcs11Signer).Close() })
	return s
}
