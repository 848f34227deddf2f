//go:build !cgo

package signer

import (
	"context"
	"errors"

	"github.com/rotor-dev/rotor"
)

// errNoPKCS11 is what a binary built with CGO_ENABLED=0 answers for the
// pkcs11 backend: PKCS#11 modules are C libraries loaded through cgo.
var errNoPKCS11 = errors.New("signer pkcs11: this binary was built without PKCS#11 support (cgo); rebuild with CGO_ENABLED=1")

func openPKCS11(context.Context, Config) (Key, error) { return nil, errNoPKCS11 }

func generatePKCS11(context.Context, Config, rotor.KeyType) (Key, error) {
	return nil, errNoPKCS11
}
