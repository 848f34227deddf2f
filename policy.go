package rotor

import (
	"cmp"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"net/url"
	"strings"
	"time"
)

// Policy decides what a caller may get. It is the one place that does:
// stores and transports never decide who gets a certificate.
type Policy struct {
	// TrustDomain names the mesh: it ends DNS names and is the SPIFFE host.
	TrustDomain string
	// DefaultTTL is the lifetime of a certificate whose request names none.
	DefaultTTL time.Duration
	// MaxTTL caps what a request may ask for.
	MaxTTL time.Duration
	// ClockSkew backdates NotBefore so peers with slow clocks accept a
	// fresh certificate.
	ClockSkew time.Duration
	// CRLURL, if set, is where the CA's CRLs are served, without the key
	// ID: an absolute http or https URL such as
	// https://ca.example.com/v1/crl. Each leaf names CRLURL/<issuer key ID>
	// as its CRL distribution point (CRLDistributionPoint).
	CRLURL string
	// LinkerdSuffix ends the names of leaves issued with NamingLinkerd
	// (Identity.LinkerdName); "" means DefaultLinkerdSuffix.
	LinkerdSuffix string
}

// Naming says how a leaf names its identity, and so what its CSR may name.
type Naming int

const (
	// NamingRotor: the DNS SAN and CN are Identity.DNSName and the URI SAN
	// the SPIFFE ID; a CSR may name none of them or exactly those.
	NamingRotor Naming = iota
	// NamingLinkerd: the leaf Linkerd's identity service would issue, so
	// that Linkerd's proxies take it unchanged: Identity.LinkerdName as DNS
	// SAN and CN, and nothing else. As Linkerd requires, the CSR must name
	// exactly that one DNS name, a CN empty or the same, and no other SAN.
	NamingLinkerd
)

// leafNames are the names a leaf carries for an identity.
type leafNames struct {
	dns, uri string // uri "" for none
	// exact: the CSR must carry dns as its one DNS SAN (Linkerd's rule);
	// otherwise it may carry none of the leaf's names.
	exact bool
}

// names decides the names of id's leaf under naming n.
func (p Policy) names(id Identity, n Naming) (leafNames, error) {
	switch n {
	case NamingRotor:
		return leafNames{dns: id.DNSName(p.TrustDomain), uri: id.SPIFFEID(p.TrustDomain).String()}, nil
	case NamingLinkerd:
		dns, err := id.LinkerdName(cmp.Or(p.LinkerdSuffix, DefaultLinkerdSuffix))
		return leafNames{dns: dns, exact: true}, err
	}
	return leafNames{}, Errorf(EInternal, "unknown naming %d", n)
}

// MinTTL is the shortest lifetime a request may ask for: short enough to
// watch rotation in a test, long enough to survive one round trip.
const MinTTL = time.Second

// Validate checks the policy's own values; errors are EInvalid.
func (p Policy) Validate() error {
	if err := ValidateTrustDomain(p.TrustDomain); err != nil {
		return err
	}
	switch {
	case p.DefaultTTL < MinTTL:
		return Errorf(EInvalid, "certificate TTL %v is shorter than %v", p.DefaultTTL, MinTTL)
	case p.MaxTTL < p.DefaultTTL:
		return Errorf(EInvalid, "maximum certificate TTL %v is shorter than the default %v", p.MaxTTL, p.DefaultTTL)
	case p.ClockSkew < 0:
		return Errorf(EInvalid, "clock skew %v is negative", p.ClockSkew)
	}
	if p.LinkerdSuffix != "" && !isSubdomain(p.LinkerdSuffix) {
		return Errorf(EInvalid, "Linkerd identity suffix %q is not a lowercase DNS name", p.LinkerdSuffix)
	}
	return checkCRLURL(p.CRLURL)
}

// checkCRLURL holds a CRL URL to what a leaf can carry and a relying party
// can fetch: an absolute http or https URL of visible ASCII (a URI is an
// IA5String), with no user, query or fragment, since the key ID is
// appended to its path.
func checkCRLURL(raw string) error {
	if raw == "" {
		return nil
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] <= ' ' || raw[i] > '~' {
			return Errorf(EInvalid, "CRL URL %q must be visible ASCII: percent-encode anything else", raw)
		}
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return Errorf(EInvalid, "CRL URL %q does not parse: %v", raw, err)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return Errorf(EInvalid, "CRL URL %q must be an absolute http:// or https:// URL with a host", raw)
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#"):
		return Errorf(EInvalid, "CRL URL %q must have no user, query or fragment: the issuer key ID is appended to its path", raw)
	}
	return nil
}

// CRLDistributionPoint is the URI of the CRL of the issuer with key ID
// issuerKeyID (hex) that leaves carry: CRLURL/<issuerKeyID>, "" when CRLURL
// is not set.
func (p Policy) CRLDistributionPoint(issuerKeyID string) string {
	if p.CRLURL == "" {
		return ""
	}
	return strings.TrimRight(p.CRLURL, "/") + "/" + issuerKeyID
}

// TTL resolves a requested lifetime: zero means the default; more than the
// maximum is refused rather than silently shortened, so a misconfigured
// agent hears about it.
func (p Policy) TTL(requested time.Duration) (time.Duration, error) {
	switch {
	case requested == 0:
		return p.DefaultTTL, nil
	case requested < MinTTL:
		return 0, Errorf(EInvalid, "ttl %v is shorter than the minimum %v", requested, MinTTL)
	case requested > p.MaxTTL:
		return 0, Errorf(EInvalid, "ttl %v is longer than this CA's maximum %v", requested, p.MaxTTL)
	}
	return requested, nil
}

// CheckedCSR is a CSR that passed the policy, with what the audit records of
// its key.
type CheckedCSR struct {
	Request         *x509.CertificateRequest
	KeyAlgorithm    string
	KeySize         int
	PublicKeySHA256 string
	CSRSHA256       string
}

var oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}

// CheckCSR parses a DER CSR and checks it for id: a valid self-signature
// (checked once, here), an allowed key, and no names or CA usage beyond the
// caller's own identity (NamingRotor). Malformed input gives EBadCSR; a
// name or usage the caller may not have gives EForbidden.
func (p Policy) CheckCSR(der []byte, id Identity) (*CheckedCSR, error) {
	names, err := p.names(id, NamingRotor)
	if err != nil {
		return nil, err
	}
	return p.checkCSR(der, names)
}

// checkCSR is CheckCSR for a leaf named names.
func (p Policy) checkCSR(der []byte, names leafNames) (*CheckedCSR, error) {
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, WrapError(EBadCSR, err, "CSR is not a valid PKCS#10 request")
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, WrapError(EBadCSR, err, "CSR signature does not verify")
	}
	alg, size, err := checkKey(csr.PublicKey)
	if err != nil {
		return nil, err
	}
	if err := checkNames(csr, names); err != nil {
		return nil, err
	}
	for _, ext := range csr.Extensions {
		if !ext.Id.Equal(oidBasicConstraints) {
			continue
		}
		var bc struct {
			IsCA       bool `asn1:"optional"`
			MaxPathLen int  `asn1:"optional,default:-1"`
		}
		if _, err := asn1.Unmarshal(ext.Value, &bc); err != nil {
			return nil, WrapError(EBadCSR, err, "CSR basicConstraints extension is malformed")
		}
		if bc.IsCA {
			return nil, Errorf(EForbidden, "CSR asks for a CA certificate; Rotor issues workload leaves only")
		}
	}
	spki := sha256.Sum256(csr.RawSubjectPublicKeyInfo)
	whole := sha256.Sum256(der)
	return &CheckedCSR{Request: csr, KeyAlgorithm: alg, KeySize: size,
		PublicKeySHA256: hex.EncodeToString(spki[:]), CSRSHA256: hex.EncodeToString(whole[:])}, nil
}

func checkKey(pub any) (alg string, bits int, err error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return "", 0, Errorf(EBadCSR, "ECDSA curve %s is not allowed: use P-256 or P-384", k.Curve.Params().Name)
		}
		return "ECDSA", k.Curve.Params().BitSize, nil
	case ed25519.PublicKey:
		return "Ed25519", 256, nil
	case *rsa.PublicKey:
		n := k.N.BitLen()
		if n < 2048 || n > 8192 {
			return "", 0, Errorf(EBadCSR, "RSA key of %d bits is not allowed: use 2048 to 8192 bits", n)
		}
		if k.E < 65537 || k.E%2 == 0 {
			return "", 0, Errorf(EBadCSR, "RSA public exponent %d is not allowed", k.E)
		}
		return "RSA", n, nil
	}
	return "", 0, Errorf(EBadCSR, "public key type %T is not allowed: use ECDSA P-256/P-384, Ed25519 or RSA", pub)
}

// checkNames allows no SANs (the CA fills them in), or exactly one DNS
// name when names.exact, and otherwise only the leaf's own names; a
// subject CN, if any, must be the leaf's DNS name.
func checkNames(csr *x509.CertificateRequest, names leafNames) error {
	dns, uri := names.dns, names.uri
	if names.exact && len(csr.DNSNames) != 1 {
		return Errorf(EForbidden, "the CSR must name exactly one DNS name, %s, not %d", dns, len(csr.DNSNames))
	}
	for _, n := range csr.DNSNames {
		if n != dns {
			return Errorf(EForbidden, "DNS name %q is not the caller's identity %s", n, dns)
		}
	}
	for _, u := range csr.URIs {
		if uri == "" || u.String() != uri {
			return Errorf(EForbidden, "URI %q is not a name of the caller's identity %s", u, dns)
		}
	}
	if len(csr.EmailAddresses) > 0 || len(csr.IPAddresses) > 0 {
		return Errorf(EForbidden, "e-mail and IP address SANs are not allowed in workload certificates")
	}
	if cn := csr.Subject.CommonName; cn != "" && cn != dns {
		return Errorf(EForbidden, "subject common name %q is not the caller's identity %s", cn, dns)
	}
	return nil
}
