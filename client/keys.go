package client

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"

	"github.com/rotor-dev/rotor"
)

// KeyType names a kind of workload key, as --key-type spells it.
type KeyType string

// The key types a Rotor CA accepts for workloads.
const (
	ECDSAP256 KeyType = "ecdsa-p256"
	ECDSAP384 KeyType = "ecdsa-p384"
	Ed25519   KeyType = "ed25519"
	RSA2048   KeyType = "rsa-2048"
	RSA3072   KeyType = "rsa-3072"
)

// KeyTypes lists every KeyType, the default first.
var KeyTypes = []KeyType{ECDSAP256, ECDSAP384, Ed25519, RSA2048, RSA3072}

// ParseKeyType checks s names a KeyType.
func ParseKeyType(s string) (KeyType, error) {
	for _, k := range KeyTypes {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("key type %q is not one of %v", s, KeyTypes)
}

// GenerateKey makes a new private key of type t with crypto/rand.
func GenerateKey(t KeyType) (crypto.Signer, error) {
	switch t {
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case Ed25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case RSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	}
	return nil, fmt.Errorf("key type %q is not one of %v", t, KeyTypes)
}

// KeyTypeOf returns the KeyType of a public key, false if it is none of
// them.
func KeyTypeOf(pub crypto.PublicKey) (KeyType, bool) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return ECDSAP256, true
		case elliptic.P384():
			return ECDSAP384, true
		}
	case ed25519.PublicKey:
		return Ed25519, true
	case *rsa.PublicKey:
		switch k.N.BitLen() {
		case 2048:
			return RSA2048, true
		case 3072:
			return RSA3072, true
		}
	}
	return "", false
}

// EncodeKey PEM-encodes a private key as PKCS#8 ("PRIVATE KEY"), the form
// every TLS stack reads.
func EncodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode %T key: %w", key, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseKey reads the first PKCS#8 "PRIVATE KEY" block of a PEM document.
func ParseKey(pemBytes []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, pemBytes = pem.Decode(pemBytes)
		if block == nil {
			return nil, fmt.Errorf("no PRIVATE KEY block found")
		}
		if block.Type != "PRIVATE KEY" {
			continue
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse private key: %w", err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("private key of type %T cannot sign", k)
		}
		return s, nil
	}
}

// NewCSR makes the CSR Issue wants for key: no subject and no names, since
// the CA fills in the identity the credentials prove.
func NewCSR(key crypto.Signer) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, rotor.WrapError(rotor.EBadCSR, err, "cannot make a CSR for a %T key", key.Public())
	}
	return der, nil
}
