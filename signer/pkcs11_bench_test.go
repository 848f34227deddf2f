//go:build cgo

package signer

import (
	"context"
	"testing"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/testenv"
)

// benchPKCS11Signer makes a SoftHSM2 token with a P-256 key.
func benchPKCS11Signer(b *testing.B) rotor.Signer {
	hsm := testenv.NewSoftHSM(b)
	cfg := Config{Backend: BackendPKCS11, PKCS11: PKCS11Config{Module: hsm.Module, TokenLabel: hsm.Label, PIN: hsm.PIN, KeyLabel: "issuer"}}
	s, err := Generate(context.Background(), cfg, rotor.ECDSAP256)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.(*pkcs11Signer).Close() })
	return s
}
