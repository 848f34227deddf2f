package rotor

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
)

// sigScheme is how an issuer key signs leaves: the AlgorithmIdentifier DER
// that certificates carry, the hash passed to the signer, and whether the
// signature is verified before it leaves the CA.
type sigScheme struct {
	algID  []byte
	hash   crypto.Hash // 0 for Ed25519, which signs the message itself
	verify bool
}

// Signature AlgorithmIdentifiers, DER, as x509.CreateCertificate writes them.
var (
	ecdsaSHA256  = []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02}
	ecdsaSHA384  = []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03}
	rsaSHA256    = []byte{0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00}
	ed25519AlgID = []byte{0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70}
)

// schemeFor is the scheme x509.CreateCertificate would use for the issuer's
// key, with the hash SignatureHash gives. RSA signatures are verified,
// because they are cheap to verify and an RSA-CRT fault in the signer would
// otherwise leak the issuing key; ECDSA and Ed25519 ones are not, as
// verifying would double the cost of an issuance.
func schemeFor(pub crypto.PublicKey) (sigScheme, error) {
	h, err := SignatureHash(pub)
	if err != nil {
		return sigScheme{}, err
	}
	switch pub.(type) {
	case ed25519.PublicKey:
		return sigScheme{algID: ed25519AlgID}, nil
	case *rsa.PublicKey:
		return sigScheme{algID: rsaSHA256, hash: h, verify: true}, nil
	}
	if h == crypto.SHA384 {
		return sigScheme{algID: ecdsaSHA384, hash: h}, nil
	}
	return sigScheme{algID: ecdsaSHA256, hash: h}, nil
}

// signLeaf encodes the leaf's TBSCertificate, has the issuer sign it and
// returns the certificate DER.
func (iss *Issuer) signLeaf(ctx context.Context, f leafFields) ([]byte, error) {
	tbs := encodeLeafTBS(iss.Certificate, iss.scheme.algID, f)
	msg := tbs
	if iss.scheme.hash != 0 {
		h := iss.scheme.hash.New()
		h.Write(tbs)
		msg = h.Sum(nil)
	}
	sig, err := iss.Signer.Sign(ctx, msg, iss.scheme.hash)
	if err != nil {
		return nil, err
	}
	if iss.scheme.verify && !VerifySignature(iss.Certificate.PublicKey, msg, sig, iss.scheme.hash) {
		return nil, WrapError(ESignerUnavailable, ErrBadSignature, "the issuing key returned an invalid signature")
	}
	return derSeq(tbs, iss.scheme.algID, derTLV(0x03, append([]byte{0}, sig...))), nil
}
