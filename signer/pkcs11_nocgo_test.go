//go:build !cgo

package signer

import (
	"context"
	"errors"
	"testing"

	"github.com/rotor-dev/rotor"
)

func benchPKCS11Signer(b *testing.B) rotor.Signer {
	b.Skip("built without cgo: no PKCS#11")
	return nil
}

func TestPKCS11WithoutCgo(t *testing.T) {
	cfg := Config{Backend: BackendPKCS11, PKCS11: PKCS11Config{Module: "/m.so", TokenLabel: "t", PIN: "1", KeyLabel: "k"}}
	if _, err := Open(context.Background(), cfg); !errors.Is(err, errNoPKCS11) {
		t.Fatalf("Open = %v, want errNoPKCS11", err)
	}
	if _, err := Generate(context.Background(), cfg, rotor.ECDSAP256); !errors.Is(err, errNoPKCS11) {
		t.Fatalf("Generate = %v, want errNoPKCS11", err)
	}
}
