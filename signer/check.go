package signer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"

	"github.com/rotor-dev/rotor"
)

// Check proves s can sign now: it makes a real signature over a random
// digest and verifies it with s.Public(). A session ping would pass while
// the key is unusable; this cannot. A signer with its own Check method
// (Monitored) is asked through it, so its health tracking sees the result.
// Failures are rotor.ESignerUnavailable; this is what /readyz calls.
func Check(ctx context.Context, s rotor.Signer) error {
	if c, ok := s.(interface{ Check(context.Context) error }); ok {
		return c.Check(ctx)
	}
	return testSignature(ctx, s)
}

func testSignature(ctx context.Context, s rotor.Signer) error {
	pub := s.Public()
	h, err := hashFor(pub)
	if err != nil {
		return rotor.WrapError(rotor.ESignerUnavailable, err, "signer check")
	}
	msg := make([]byte, 32)
	if _, err := rand.Read(msg); err != nil {
		return rotor.WrapError(rotor.ESignerUnavailable, err, "signer check: read random")
	}
	hh := h.New()
	hh.Write(msg)
	digest := hh.Sum(nil)
	sig, err := s.Sign(ctx, digest, h)
	if err != nil {
		if rotor.ErrorCodeOf(err) == rotor.ESignerUnavailable {
			return err
		}
		return rotor.WrapError(rotor.ESignerUnavailable, err, "signer check: test signature failed")
	}
	if !verify(pub, digest, sig, h) {
		return rotor.WrapError(rotor.ESignerUnavailable, errBadSignature, "signer check: test signature does not verify")
	}
	return nil
}

var errBadSignature = errors.New("signature does not verify against the signer's public key")

// hashFor is the hash x509.CreateCertificate picks for pub, so checks and
// benchmarks sign what issuance signs.
func hashFor(pub crypto.PublicKey) (crypto.Hash, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return crypto.SHA256, nil
		case elliptic.P384():
			return crypto.SHA384, nil
		}
		return 0, fmt.Errorf("unsupported ECDSA curve %s (want P-256 or P-384)", k.Curve.Params().Name)
	case *rsa.PublicKey:
		return crypto.SHA256, nil
	}
	return 0, fmt.Errorf("unsupported public key type %T (want ECDSA or RSA)", pub)
}

// verify checks an ECDSA (ASN.1) or RSA PKCS#1 v1.5 signature.
func verify(pub crypto.PublicKey, digest, sig []byte, h crypto.Hash) bool {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(k, digest, sig)
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, h, digest, sig) == nil
	}
	return false
}

// checkKey refuses keys a CA should not issue with: curves other than P-256
// and P-384, RSA under 2048 bits.
func checkKey(pub crypto.PublicKey) error {
	if k, ok := pub.(*rsa.PublicKey); ok && k.N.BitLen() < 2048 {
		return fmt.Errorf("RSA key of %d bits is too weak (want at least 2048)", k.N.BitLen())
	}
	_, err := hashFor(pub)
	return err
}

// publicKeysEqual compares two public keys of any supported type.
func publicKeysEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}
