package client

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"

	"github.com/rotor-dev/rotor"
)

// NewCSR makes the CSR Issue wants for key: no subject and no names, since
// the CA fills in the identity the credentials prove.
func NewCSR(key crypto.Signer) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, rotor.WrapError(rotor.EBadCSR, err, "cannot make a CSR for a %T key", key.Public())
	}
	return der, nil
}
