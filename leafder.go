package rotor

import (
	"crypto/x509"
	"math/big"
	"time"
)

// This file is an encoder, not policy: it writes the DER of a leaf's
// TBSCertificate from fields the CA has already decided (ca.go) for an
// issuer whose signature scheme trust.go picked. It exists because
// x509.CreateCertificate verifies every signature it makes: for an ECDSA
// issuer that verification (~70 us) costs more than the signature itself
// (~30 us) and is a third of a whole issuance (BenchmarkSignLeaf measures
// both). Its output is held to x509.CreateCertificate's, byte for byte, by
// TestLeafMatchesCreateCertificate and FuzzLeafEncoder.

// leafFields is what varies between leaves.
type leafFields struct {
	Serial     *big.Int
	CommonName string
	DNSName    string
	URI        string // "" for none: Linkerd's leaves carry the DNS name alone
	NotBefore  time.Time
	NotAfter   time.Time
	SPKI       []byte // the subject's SubjectPublicKeyInfo, DER
	SKI        []byte
	RSASubject bool // adds keyEncipherment
	// CRLDistributionPoint is the URI of the CRL that would list the leaf,
	// "" for none.
	CRLDistributionPoint string
}

var (
	oidCommonName = []byte{0x06, 0x03, 0x55, 0x04, 0x03}
	extKeyUsage   = []byte{0x06, 0x03, 0x55, 0x1d, 0x0f}
	extExtKeyUse  = []byte{0x06, 0x03, 0x55, 0x1d, 0x25}
	extBasicCons  = []byte{0x06, 0x03, 0x55, 0x1d, 0x13}
	extSubjectKID = []byte{0x06, 0x03, 0x55, 0x1d, 0x0e}
	extAuthKID    = []byte{0x06, 0x03, 0x55, 0x1d, 0x23}
	extSAN        = []byte{0x06, 0x03, 0x55, 0x1d, 0x11}
	extCRLDP      = []byte{0x06, 0x03, 0x55, 0x1d, 0x1f}
	// SEQUENCE { serverAuth, clientAuth }
	ekuServerClient = []byte{0x30, 0x14,
		0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01,
		0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02}
	derTrue   = []byte{0x01, 0x01, 0xff}
	emptySeq  = []byte{0x30, 0x00}
	versionV3 = []byte{0xa0, 0x03, 0x02, 0x01, 0x02}
)

// encodeLeafTBS is the TBSCertificate of a leaf with fields f, signed by
// issuer with the signature algorithm algID (DER AlgorithmIdentifier).
func encodeLeafTBS(issuer *x509.Certificate, algID []byte, f leafFields) []byte {
	keyUsage := []byte{0x03, 0x02, 0x07, 0x80} // digitalSignature
	if f.RSASubject {
		keyUsage = []byte{0x03, 0x02, 0x05, 0xa0} // digitalSignature, keyEncipherment
	}
	cnTag := byte(0x13) // PrintableString, as encoding/asn1 picks for DNS names
	if !isPrintable(f.CommonName) {
		cnTag = 0x0c // UTF8String
	}
	subject := derSeq(derTLV(0x31, derSeq(oidCommonName, derTLV(cnTag, []byte(f.CommonName)))))
	sans := [][]byte{derTLV(0x82, []byte(f.DNSName))}
	if f.URI != "" {
		sans = append(sans, derTLV(0x86, []byte(f.URI)))
	}
	san := derSeq(sans...)
	// In x509.CreateCertificate's order; the distribution point comes last.
	extList := [][]byte{
		derSeq(extKeyUsage, derTrue, derTLV(0x04, keyUsage)),
		derSeq(extExtKeyUse, derTLV(0x04, ekuServerClient)),
		derSeq(extBasicCons, derTrue, derTLV(0x04, emptySeq)),
		derSeq(extSubjectKID, derTLV(0x04, derTLV(0x04, f.SKI))),
		derSeq(extAuthKID, derTLV(0x04, derSeq(derTLV(0x80, issuer.SubjectKeyId)))),
		derSeq(extSAN, derTLV(0x04, san)),
	}
	if f.CRLDistributionPoint != "" {
		// CRLDistributionPoints ::= SEQUENCE OF DistributionPoint, here one
		// whose distributionPoint [0] is a fullName [0] of one URI [6]
		// (RFC 5280 4.2.1.13); non-critical.
		dp := derSeq(derTLV(0xa0, derTLV(0xa0, derTLV(0x86, []byte(f.CRLDistributionPoint)))))
		extList = append(extList, derSeq(extCRLDP, derTLV(0x04, derSeq(dp))))
	}
	exts := derTLV(0xa3, derSeq(extList...))
	return derSeq(
		versionV3,
		derInteger(f.Serial),
		algID,
		issuer.RawSubject,
		derSeq(derTime(f.NotBefore), derTime(f.NotAfter)),
		subject,
		f.SPKI,
		exts,
	)
}

// derTLV encodes one DER element.
func derTLV(tag byte, content []byte) []byte {
	return append(derHeader(make([]byte, 0, len(content)+6), tag, len(content)), content...)
}

// derSeq encodes a SEQUENCE of parts straight into one buffer: a leaf is
// a dozen nested sequences, and building each content before its header
// allocated and copied every byte twice.
func derSeq(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := derHeader(make([]byte, 0, n+6), 0x30, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// derHeader appends the tag and the DER length n.
func derHeader(out []byte, tag byte, n int) []byte {
	out = append(out, tag)
	switch {
	case n < 0x80:
		return append(out, byte(n))
	case n < 0x100:
		return append(out, 0x81, byte(n))
	case n < 0x10000:
		return append(out, 0x82, byte(n>>8), byte(n))
	default:
		return append(out, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
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
