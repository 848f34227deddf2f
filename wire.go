package rotor

import (
	"encoding/pem"
	"time"
)

// The HTTP API's vocabulary (openapi.yaml): media types, headers and JSON
// bodies, shared by the server (api) and the Go client so that the two
// cannot drift apart.

// Media types the API speaks.
const (
	MediaJSON     = "application/json"
	MediaProblem  = "application/problem+json"          // RFC 9457
	MediaPEMChain = "application/pem-certificate-chain" // RFC 8555 7.4.2: leaf, then chain
	MediaPKCS10   = "application/pkcs10"                // a CSR, PEM or DER
	MediaPKIXCRL  = "application/pkix-crl"              // RFC 2585: a CRL, DER
)

// HeaderBundleFingerprint carries the fingerprint of the trust bundle a
// client holds with each issuance request, for root rotation's audit.
const HeaderBundleFingerprint = "Rotor-Bundle-Fingerprint"

// MaxResponse caps what Rotor reads of any HTTP answer, its own API's or a
// JWKS or Kubernetes API server's: each is a few KiB, and a misbehaving
// server must not make a reader buffer without limit.
const MaxResponse = 1 << 20

// IsLowerHex reports whether s is lo to hi lowercase hex digits: the form of
// serials and fingerprints on the wire and in the store.
func IsLowerHex(s string, lo, hi int) bool {
	if len(s) < lo || len(s) > hi {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// MaxSerialHex is the longest serial in hex: RFC 5280's 20 octets.
const MaxSerialHex = 40

// IssueBody is the JSON request body of POST /v1/certificates.
type IssueBody struct {
	CSR string `json:"csr"`           // PEM
	TTL string `json:"ttl,omitempty"` // a Go duration
}

// IssuedCertificate is the 201 body of POST /v1/certificates.
type IssuedCertificate struct {
	Serial      string    `json:"serial"`
	Identity    string    `json:"identity"` // the DNS identity
	SPIFFEID    string    `json:"spiffe_id"`
	Certificate string    `json:"certificate"` // leaf, PEM
	Chain       string    `json:"chain"`       // intermediates, PEM, root excluded
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	RenewAfter  time.Time `json:"renew_after"`
}

// NewIssuedCertificate is the answer for an issuance signed by issuer.
func NewIssuedCertificate(iss *Issuance, issuer *Issuer, trustDomain string) IssuedCertificate {
	return IssuedCertificate{
		Serial:      iss.Serial,
		Identity:    iss.Identity.DNSName(trustDomain),
		SPIFFEID:    iss.Identity.SPIFFEID(trustDomain).String(),
		Certificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: iss.Certificate})),
		Chain:       string(issuer.ChainPEM),
		NotBefore:   iss.NotBefore.UTC(),
		NotAfter:    iss.NotAfter.UTC(),
		RenewAfter:  iss.RenewAfter().UTC(),
	}
}

// CertificateRecord is the 200 body of GET /v1/certificates/{serial}: an
// Issuance flattened for JSON, with the certificate as PEM.
type CertificateRecord struct {
	Serial            string    `json:"serial"`
	Identity          string    `json:"identity"` // the DNS identity
	Namespace         string    `json:"namespace"`
	ServiceAccount    string    `json:"service_account"`
	SANs              []string  `json:"sans"`
	KeyAlgorithm      string    `json:"key_algorithm"`
	KeySize           int       `json:"key_size"`
	PublicKeySHA256   string    `json:"public_key_sha256"`
	CSRSHA256         string    `json:"csr_sha256"`
	NotBefore         time.Time `json:"not_before"`
	NotAfter          time.Time `json:"not_after"`
	IssuedAt          time.Time `json:"issued_at"`
	RenewAfter        time.Time `json:"renew_after"`
	IssuerKeyID       string    `json:"issuer_key_id"`
	Authenticator     string    `json:"authenticator"`
	TokenSubject      string    `json:"token_subject"`
	RemoteAddr        string    `json:"remote_addr"`
	BundleFingerprint string    `json:"bundle_fingerprint,omitempty"`
	Credential        string    `json:"credential,omitempty"`
	Certificate       string    `json:"certificate"` // PEM
	// Revoked is set when the certificate was revoked.
	Revoked *RevocationRecord `json:"revoked,omitempty"`
}

// RevocationRecord is a revocation as the API shows it.
type RevocationRecord struct {
	RevokedAt time.Time `json:"revoked_at"`
	Reason    string    `json:"reason"` // RFC 5280 name
	Actor     string    `json:"actor"`
	Comment   string    `json:"comment"`
}

// NewRevocationRecord is r for the API; nil for nil.
func NewRevocationRecord(r *Revocation) *RevocationRecord {
	if r == nil {
		return nil
	}
	return &RevocationRecord{RevokedAt: r.Time.UTC(), Reason: r.Reason.String(), Actor: r.Actor, Comment: r.Comment}
}

// CertificateList is the 200 body of GET /v1/certificates: a page, newest
// first, and the cursor of the next ("" after the last).
type CertificateList struct {
	Certificates []CertificateRecord `json:"certificates"`
	NextCursor   string              `json:"next_cursor,omitempty"`
}

// DenyResult is the 200 body of POST /v1/identities/{ns}/{sa}/deny.
type DenyResult struct {
	Namespace      string   `json:"namespace"`
	ServiceAccount string   `json:"service_account"`
	Denied         bool     `json:"denied"`
	Revoked        []string `json:"revoked"` // serials revoked with the denial
}

// RevokeResult is the 200 body of POST /v1/certificates/{serial}/revoke.
type RevokeResult struct {
	Serial string `json:"serial"`
	RevocationRecord
}

// NewCertificateRecord flattens iss for the API.
func NewCertificateRecord(iss *Issuance, trustDomain string) CertificateRecord {
	sans := iss.SANs
	if sans == nil {
		sans = []string{}
	}
	return CertificateRecord{
		Serial: iss.Serial, Identity: iss.Identity.DNSName(trustDomain),
		Namespace: iss.Identity.Namespace, ServiceAccount: iss.Identity.ServiceAccount, SANs: sans,
		KeyAlgorithm: iss.KeyAlgorithm, KeySize: iss.KeySize,
		PublicKeySHA256: iss.PublicKeySHA256, CSRSHA256: iss.CSRSHA256,
		NotBefore: iss.NotBefore.UTC(), NotAfter: iss.NotAfter.UTC(), IssuedAt: iss.IssuedAt.UTC(),
		RenewAfter: iss.RenewAfter().UTC(), IssuerKeyID: iss.IssuerKeyID,
		Authenticator: iss.Authenticator, TokenSubject: iss.TokenSubject, RemoteAddr: iss.RemoteAddr,
		BundleFingerprint: iss.BundleFingerprint, Credential: iss.Credential,
		Certificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: iss.Certificate})),
	}
}

// Issuance turns the record back into the core's form.
func (r CertificateRecord) Issuance() (*Issuance, error) {
	certs, err := ParseCertificates([]byte(r.Certificate))
	if err != nil {
		return nil, WrapError(EInternal, err, "certificate record %s holds no parsable certificate", r.Serial)
	}
	return &Issuance{
		Serial: r.Serial, Identity: Identity{Namespace: r.Namespace, ServiceAccount: r.ServiceAccount},
		SANs: r.SANs, KeyAlgorithm: r.KeyAlgorithm, KeySize: r.KeySize,
		PublicKeySHA256: r.PublicKeySHA256, CSRSHA256: r.CSRSHA256,
		NotBefore: r.NotBefore, NotAfter: r.NotAfter, IssuedAt: r.IssuedAt,
		IssuerKeyID: r.IssuerKeyID, Authenticator: r.Authenticator, TokenSubject: r.TokenSubject,
		RemoteAddr: r.RemoteAddr, BundleFingerprint: r.BundleFingerprint, Credential: r.Credential,
		Certificate: certs[0].Raw,
	}, nil
}

// RenewalInfo is the 200 body of GET /v1/renewal-info/{serial}: ACME's
// renewalInfo (RFC 9773 4.2) without explanationURL.
type RenewalInfo struct {
	SuggestedWindow RenewalWindow `json:"suggestedWindow"`
}

// Problem is an RFC 9457 problem details document as Rotor sends it. Type is
// ErrorCode.ProblemType(); Detail is the caller-safe message.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance,omitempty"`
}
