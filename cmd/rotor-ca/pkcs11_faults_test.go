//go:build cgo

package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rotor-dev/rotor/internal/testenv"
)

// TestPKCS11TokenLoss takes the SoftHSM2 token away from a serving CA, as
// an HSM that drops off the network or a token store that goes away, by
// moving the token's directory out of SoftHSM2's token directory, and puts
// it back. SoftHSM2 answers the next signature CKR_OBJECT_HANDLE_INVALID;
// the PKCS#11 signer drops its crypto11 context and reopens it in the
// background, failing ("could not find PKCS#11 token") with backoff while
// the directory is away, and the CA answers 503 signer-unavailable with
// nothing issued. Once the directory is back the same process signs again.
// (root cannot be locked out with chmod, so moving is the real fault here.)
func TestPKCS11TokenLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; skipped with -short")
	}
	t.Parallel()
	hsm := testenv.NewSoftHSMToken(t)
	env := append(hsm.Env(), pinEnv+"="+hsm.PIN)
	dir := t.TempDir()
	ca := startSignerCA(t, env, dir, "--signer", "pkcs11", "--pkcs11-module", hsm.Module, "--pkcs11-token", hsm.Label,
		"--pkcs11-key-label", "issuer")
	entries, err := os.ReadDir(hsm.Tokens)
	if err != nil || len(entries) != 1 {
		t.Fatalf("token directory %s: %v %v", hsm.Tokens, entries, err)
	}
	tokenDir, away := filepath.Join(hsm.Tokens, entries[0].Name()), filepath.Join(dir, "away")
	ca.checkOutage(t, 3, func(t *testing.T) { move(t, tokenDir, away) }, func(t *testing.T) { move(t, away, tokenDir) })
}

func move(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}
