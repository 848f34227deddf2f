package rotor

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"math/big"
	"time"
)

// Leaf certificates are encoded here rather than by x509.CreateCertificate
// because CreateCertificate verifies every signature it makes: for an ECDSA
// issuer that verification (~70 us) costs more than the signature itself
// (~30 us) and is a third of a whole issuance. The encoding is checked
// byte for byte against CreateCertificate's in leaf_test.go. RSA signatures
// are still verified, because they are cheap to verify and an RSA-CRT fault
// in the signer would otherwise leak the issuing key.

// leafFields is what varies between leaves.
type leafFields struct {
	Serial     *big.Int
	CommonName string
	DNSName    string
	URI        string
	NotBefore  time.Time
	NotAfter   time.Time
	SPKI       []byte // the subject's SubjectPublicKeyInfo, DER
	SKI        []byte
	RSASubject bool // adds keyEncipherment
}

// sigScheme is how an issuer key signs: the AlgorithmIdentifier DER that
// certificates carry and the options passed to the signer.
type sigScheme struct {
	algID  []byte
	hash   crypto.Hash // 0 for Ed25519, which signs the message itself
	verify bool
}

var (
	oidCommonName = []byte{0x06, 0x03, 0x55, 0x04, 0x03}
	extKeyUsage   = []byte{0x06, 0x03, 0x55, 0x1d, 0x0f}
	extExtKeyUse  = []byte{0x06, 0x03, 0x55, 0x1d, 0x25}
	extBasicCons  = []byte{0x06, 0x03, 0x55, 0x1d, 0x13}
	extSubjectKID = []byte{0x06, 0x03, 0x55, 0x1d, 0x0e}
	extAuthKID    = []byte{0x06, 0x03, 0x55, 0x1d, 0x23}
	extSAN        = []byte{0x06, 0x03, 0x55, 0x1d, 0x11}
	// SEQUENCE { serverAuth, clientAuth }
	ekuServerClient = []byte{0x30, 0x14,
		0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01,
		0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02}
	derTrue      = []byte{0x01, 0x01, 0xff}
	emptySeq     = []byte{0x30, 0x00}
	versionV3    = []byte{0xa0, 0x03, 0x02, 0x01, 0x02}
	ecdsaSHA256  = []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02}
	ecdsaSHA384  = []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03}
	rsaSHA256    = []byte{0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00}
	ed25519AlgID = []byte{0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70}
)

// schemeFor picks the signature algorithm x509.CreateCertificate would pick
// for the issuer's key, for the key types Rotor's signers make.
func schemeFor(pub crypto.PublicKey) (sigScheme, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return sigScheme{algID: ecdsaSHA256, hash: crypto.SHA256}, nil
		case elliptic.P384():
			return sigScheme{algID: ecdsaSHA384, hash: crypto.SHA384}, nil
		}
	case *rsa.PublicKey:
		return sigScheme{algID: rsaSHA256, hash: crypto.SHA256, verify: true}, nil
	case ed25519.PublicKey:
		return sigScheme{algID: ed25519AlgID}, nil
	}
	return sigScheme{}, fmt.Errorf("issuer key %T is not supported: use ECDSA P-256 or P-384, RSA or Ed25519", pub)
}

// signLeaf encodes the leaf's TBSCertificate, has the issuer sign it and
// returns the certificate DER.
func (iss *Issuer) signLeaf(ctx context.Context, f leafFields) ([]byte, error) {
	tbs := iss.leafTBS(f)
	msg, opts := tbs, crypto.SignerOpts(iss.scheme.hash)
	if iss.scheme.hash != 0 {
		h := iss.scheme.hash.New()
		h.Write(tbs)
		msg = h.Sum(nil)
	}
	sig, err := iss.Signer.Sign(ctx, msg, opts)
	if err != nil {
		return nil, err
	}
	bitString := append([]byte{0}, sig...)
	cert := derSeq(tbs, iss.scheme.algID, derTLV(0x03, bitString))
	if iss.scheme.verify {
		if err := rsa.VerifyPKCS1v15(iss.Certificate.PublicKey.(*rsa.PublicKey), iss.scheme.hash, msg, sig); err != nil {
			return nil, WrapError(ESignerUnavailable, err, "the issuing key returned an invalid signature")
		}
	}
	return cert, nil
}

func (iss *Issuer) leafTBS(f leafFields) []byte {
	keyUsage := []byte{0x03, 0x02, 0x07, 0x80} // digitalSignature
	if f.RSASubject {
		keyUsage = []byte{0x03, 0x02, 0x05, 0xa0} // digitalSignature, keyEncipherment
	}
	cnTag := byte(0x13) // PrintableString, as encoding/asn1 picks for DNS names
	if !isPrintable(f.CommonName) {
		cnTag = 0x0c // UTF8String
	}
	subject := derSeq(derTLV(0x31, derSeq(oidCommonName, derTLV(cnTag, []byte(f.CommonName)))))
	san := derSeq(derTLV(0x82, []byte(f.DNSName)), derTLV(0x86, []byte(f.URI)))
	exts := derTLV(0xa3, derSeq(
		derSeq(extKeyUsage, derTrue, derTLV(0x04, keyUsage)),
		derSeq(extExtKeyUse, derTLV(0x04, ekuServerClient)),
		derSeq(extBasicCons, derTrue, derTLV(0x04, emptySeq)),
		derSeq(extSubjectKID, derTLV(0x04, derTLV(0x04, f.SKI))),
		derSeq(extAuthKID, derTLV(0x04, derSeq(derTLV(0x80, iss.Certificate.SubjectKeyId)))),
		derSeq(extSAN, derTLV(0x04, san)),
	))
	return derSeq(
		versionV3,
		derInteger(f.Serial),
		iss.scheme.algID,
		iss.Certificate.RawSubject,
		derSeq(derTime(f.NotBefore), derTime(f.NotAfter)),
		subject,
		f.SPKI,
		exts,
	)
}

// derTLV encodes one DER element.
func derTLV(tag byte, content []byte) []byte {
	n := len(content)
	out := make([]byte, 0, n+6)
	out = append(out, tag)
	switch {
	case n < 0x80:
		out = append(out, byte(n))
	case n < 0x100:
		out = append(out, 0x81, byte(n))
	case n < 0x10000:
		out = append(out, 0x82, byte(n>>8), byte(n))
	default:
		out = append(out, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(out, content...)
}

func derSeq(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	content := make([]byte, 0, n)
	for _, p := range parts {
		content = append(content, p...)
	}
	return derTLV(0x30, content)
}

// derInteger encodes a non-negative integer.
func derInteger(v *big.Int) []byte {
	b := v.Bytes()
	if len(b) == 0 || b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	return derTLV(0x02, b)
}

// derTime is UTCTime for 1950-2049 and GeneralizedTime otherwise (RFC 5280
// 4.1.2.5), to the second.
func derTime(t time.Time) []byte {
	t = t.UTC()
	if y := t.Year(); y >= 1950 && y < 2050 {
		return derTLV(0x17, []byte(t.Format("060102150405Z")))
	}
	return derTLV(0x18, []byte(t.Format("20060102150405Z")))
}

// isPrintable reports whether s fits an ASN.1 PrintableString.
func isPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == ' ', c == '\'', c == '(', c == ')', c == '+', c == ',', c == '-', c == '.', c == '/', c == ':', c == '=', c == '?':
		default:
			return false
		}
	}
	return true
}
