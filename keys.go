package rotor

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
)

// KeyType names a kind of key, as --key-type (workload keys) and
// --key-algorithm (CA keys) spell it. It is the one list of key kinds:
// the agent, the signers and the CA's own keys all use it.
type KeyType string

// The key types Rotor makes and accepts.
const (
	ECDSAP256 KeyType = "ecdsa-p256"
	ECDSAP384 KeyType = "ecdsa-p384"
	Ed25519   KeyType = "ed25519"
	RSA2048   KeyType = "rsa-2048"
	RSA3072   KeyType = "rsa-3072"
)

// KeyTypes lists every KeyType, the default first.
var KeyTypes = []KeyType{ECDSAP256, ECDSAP384, Ed25519, RSA2048, RSA3072}

// ParseKeyType checks that s names a KeyType; "" is the default, ECDSAP256.
func ParseKeyType(s string) (KeyType, error) {
	if s == "" {
		return ECDSAP256, nil
	}
	for _, k := range KeyTypes {
		if string(k) == s {
			return k, nil
		}
	}
	return "", Errorf(EInvalid, "key type %q is not one of %v", s, KeyTypes)
}

// GenerateKey makes a new private key of type t from random (nil means
// crypto/rand).
func GenerateKey(t KeyType, random io.Reader) (crypto.Signer, error) {
	if random == nil {
		random = rand.Reader
	}
	switch t {
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), random)
	case ECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), random)
	case Ed25519:
		_, k, err := ed25519.GenerateKey(random)
		return k, err
	case RSA2048:
		return rsa.GenerateKey(random, 2048)
	case RSA3072:
		return rsa.GenerateKey(random, 3072)
	}
	return nil, Errorf(EInvalid, "key type %q is not one of %v", t, KeyTypes)
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

// SamePublicKey reports whether a and b are the same public key, of any
// type crypto/x509 parses.
func SamePublicKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// SignatureHash is the hash a key of pub's kind signs certificates with,
// the one x509.CreateCertificate picks: SHA-256 for P-256 and RSA, SHA-384
// for P-384, and 0 for Ed25519, which signs the message itself. Every
// signature Rotor makes or checks (leaves, CA certificates, the signer
// check) takes its hash from here. Other keys are an error.
func SignatureHash(pub crypto.PublicKey) (crypto.Hash, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return crypto.SHA256, nil
		case elliptic.P384():
			return crypto.SHA384, nil
		}
		return 0, fmt.Errorf("ECDSA curve %s is not supported (want P-256 or P-384)", k.Curve.Params().Name)
	case *rsa.PublicKey:
		return crypto.SHA256, nil
	case ed25519.PublicKey:
		return 0, nil
	}
	return 0, fmt.Errorf("public key type %T is not supported (want ECDSA P-256/P-384, RSA or Ed25519)", pub)
}

// ParsePrivateKeyPEM returns the first private key in data: PKCS#8
// ("PRIVATE KEY"), SEC1 ("EC PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY").
// OpenSSL's "EC PARAMETERS" block before a SEC1 key is skipped; any other
// block is an error, so a certificate file given as a key is named as such.
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no PEM private key found")
		}
		var (
			key any
			err error
		)
		switch b.Type {
		case "EC PARAMETERS":
			continue
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("the private key is encrypted; store it unencrypted with mode 0600, or use an HSM or KMS")
		default:
			return nil, fmt.Errorf("PEM block %q is not a private key", b.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", b.Type, err)
		}
		s, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%T is not a signing key", key)
		}
		return s, nil
	}
}

// EncodePrivateKeyPEM encodes a private key as PKCS#8 PEM ("PRIVATE KEY"),
// the form every TLS stack reads.
func EncodePrivateKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode %T key: %w", key, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ErrBadSignature means a signer produced a signature that its own public
// key does not verify: a broken HSM, a wrong key behind a label, a fault.
var ErrBadSignature = errors.New("signature does not verify against the signer's public key")

// CheckSigner proves s can sign now: a real signature over a random digest,
// made the way certificates are signed and verified with s.Public(). A
// session ping would pass while the key is unusable; this cannot. Failures
// are ESignerUnavailable; a signature that does not verify wraps
// ErrBadSignature. It is the readiness check of every issuing key.
func CheckSigner(ctx context.Context, s Signer) error {
	pub := s.Public()
	h, err := SignatureHash(pub)
	if err != nil {
		return WrapError(ESignerUnavailable, err, "signer check")
	}
	msg := make([]byte, 32)
	if _, err := rand.Read(msg); err != nil {
		return WrapError(ESignerUnavailable, err, "signer check: read random")
	}
	if h != 0 {
		hh := h.New()
		hh.Write(msg)
		msg = hh.Sum(nil)
	}
	sig, err := s.Sign(ctx, msg, h)
	if err != nil {
		if ErrorCodeOf(err) == ESignerUnavailable {
			return err
		}
		return WrapError(ESignerUnavailable, err, "signer check: test signature failed")
	}
	if !VerifySignature(pub, msg, sig, h) {
		return WrapError(ESignerUnavailable, ErrBadSignature, "signer check: test signature does not verify")
	}
	return nil
}

// VerifySignature checks a signature made with SignatureHash(pub)'s hash:
// ECDSA (ASN.1), RSA PKCS#1 v1.5, or Ed25519 over msg itself.
func VerifySignature(pub crypto.PublicKey, msg, sig []byte, h crypto.Hash) bool {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(k, msg, sig)
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, h, msg, sig) == nil
	case ed25519.PublicKey:
		return ed25519.Verify(k, msg, sig)
	}
	return false
}
