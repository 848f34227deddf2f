package authn

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"strings"
	"time"

	"github.com/rotor-dev/rotor"
)

// CertificateRecords is what MTLS asks the store about a certificate it is
// shown: its audit row and revocation, and the token it descends from.
type CertificateRecords interface {
	CertificateStatus(ctx context.Context, serial string) (*rotor.CertificateStatus, error)
	TokenBySubject(ctx context.Context, subject string) (rotor.StaticToken, error)
}

// MTLS accepts a client certificate this CA issued: a renewing workload
// proves itself with the certificate it is about to replace. The TLS layer
// only requests client certificates and leaves verification to MTLS, so a
// certificate from a retired root is refused here and the request can still
// succeed with a token further down the chain.
//
// A certificate that verifies must also be on record and unrevoked, and the
// static token its lineage started from (if it started from one) must still
// be usable: revoking or deleting a token stops every renewal it began.
// It is safe for concurrent use.
type MTLS struct {
	trust       rotor.TrustSource
	records     CertificateRecords
	trustDomain string
	now         func() time.Time
}

// NewMTLS returns an authenticator verifying against trust's current bundle
// and records, and accepting identities in trustDomain. now nil means
// time.Now.
func NewMTLS(trust rotor.TrustSource, records CertificateRecords, trustDomain string, now func() time.Time) *MTLS {
	if now == nil {
		now = time.Now
	}
	return &MTLS{trust: trust, records: records, trustDomain: trustDomain, now: now}
}

// Authenticate implements rotor.Authenticator. It applies when the request
// carries client certificates; the caller's Subject is "serial:<hex>".
func (m *MTLS) Authenticate(ctx context.Context, cred rotor.Credentials) (rotor.Caller, error) {
	chain := cred.PeerCertificates
	if len(chain) == 0 {
		return rotor.Caller{}, rotor.ErrNoCredentials
	}
	leaf := chain[0]
	// A CA certificate without extended key usages would pass the chain
	// check below as "any usage"; an issuer is never a workload.
	if leaf.IsCA {
		return rotor.Caller{}, rotor.Errorf(rotor.EUnauthenticated, "client certificate is a CA certificate, not a workload's")
	}
	now := m.now()
	if err := m.trust.Trust().VerifyLeaf(chain, now); err != nil {
		return rotor.Caller{}, rotor.WrapError(rotor.EUnauthenticated, err, "client certificate is not valid under this CA's trust bundle")
	}
	id, err := m.identity(leaf)
	if err != nil {
		return rotor.Caller{}, err
	}
	serial := hex.EncodeToString(leaf.SerialNumber.Bytes())
	credential, err := m.lineage(ctx, serial, id, now)
	if err != nil {
		return rotor.Caller{}, err
	}
	return rotor.Caller{Identity: id, Authenticator: NameMTLS, Subject: "serial:" + serial, Credential: credential}, nil
}

func (m *MTLS) identity(leaf *x509.Certificate) (rotor.Identity, error) {
	if len(leaf.URIs) != 1 {
		return rotor.Identity{}, rotor.Errorf(rotor.EUnauthenticated, "client certificate must carry exactly one SPIFFE URI SAN, it has %d", len(leaf.URIs))
	}
	id, err := rotor.IdentityFromSPIFFEID(leaf.URIs[0], m.trustDomain)
	if err != nil {
		return rotor.Identity{}, rotor.WrapError(rotor.EUnauthenticated, err, "client certificate's URI SAN is not a workload identity in trust domain %s", m.trustDomain)
	}
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != id.DNSName(m.trustDomain) {
		return rotor.Identity{}, rotor.Errorf(rotor.EUnauthenticated, "client certificate's DNS SAN does not match its SPIFFE ID")
	}
	return id, nil
}

// lineage checks the certificate's record and returns the credential it
// descends from.
func (m *MTLS) lineage(ctx context.Context, serial string, id rotor.Identity, now time.Time) (string, error) {
	st, err := m.records.CertificateStatus(ctx, serial)
	switch rotor.ErrorCodeOf(err) {
	case "":
	case rotor.ENotFound:
		return "", rotor.Errorf(rotor.EUnauthenticated, "client certificate %s has no audit record at this CA", serial)
	default:
		return "", err
	}
	if r := st.Revocation; r != nil {
		return "", rotor.Errorf(rotor.EUnauthenticated, "client certificate %s was revoked at %s (%s)", serial,
			r.Time.Format(time.RFC3339), r.Reason)
	}
	if st.Issuance.Identity != id {
		return "", rotor.Errorf(rotor.EUnauthenticated, "client certificate %s is not on record for %s", serial, id)
	}
	credential := st.Issuance.Credential
	if !strings.HasPrefix(credential, "token:") {
		return credential, nil
	}
	tok, err := m.records.TokenBySubject(ctx, credential)
	switch rotor.ErrorCodeOf(err) {
	case "":
	case rotor.ENotFound:
		return "", rotor.Errorf(rotor.EUnauthenticated, "the static token this certificate descends from (%s) was deleted: get a certificate with a current credential", credential)
	default:
		return "", err
	}
	if err := tok.Usable(now); err != nil {
		return "", rotor.Errorf(rotor.EUnauthenticated, "this certificate descends from %s, which can no longer authenticate: %s", credential, rotor.ErrorMessageOf(err))
	}
	return credential, nil
}

// AdminMTLS accepts client certificates from a separate admin CA as admin
// callers. A certificate that does not chain to it is not its kind, so the
// workload authenticators see it next. The admin CA must share nothing
// with the workload trust (CheckAdminCA), or every workload would be an
// admin.
type AdminMTLS struct {
	pool *x509.CertPool
	now  func() time.Time
}

// NewAdminMTLS accepts certificates chaining to roots. now nil means
// time.Now.
func NewAdminMTLS(roots []*x509.Certificate, now func() time.Time) *AdminMTLS {
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	if now == nil {
		now = time.Now
	}
	return &AdminMTLS{pool: pool, now: now}
}

// CheckAdminCA refuses an admin CA that is, or holds, a root or issuer of
// the workload trust.
func CheckAdminCA(roots []*x509.Certificate, trust *rotor.Trust) error {
	if len(roots) == 0 {
		return rotor.Errorf(rotor.EInvalid, "the admin CA file holds no certificate")
	}
	workload := map[string]bool{rotor.Fingerprint(trust.Issuer.Certificate.Raw): true}
	for _, r := range trust.Bundle.Roots {
		workload[rotor.Fingerprint(r.Raw)] = true
	}
	for _, r := range roots {
		if workload[rotor.Fingerprint(r.Raw)] {
			return rotor.Errorf(rotor.EInvalid, "the admin CA %q is part of the workload trust: every workload would be an admin", r.Subject)
		}
	}
	return nil
}

// Authenticate implements rotor.Authenticator. The caller's Name is the
// certificate's subject and its Subject "cert:" and its fingerprint.
func (a *AdminMTLS) Authenticate(_ context.Context, cred rotor.Credentials) (rotor.Caller, error) {
	chain := cred.PeerCertificates
	if len(chain) == 0 {
		return rotor.Caller{}, rotor.ErrNoCredentials
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	leaf := chain[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: a.pool, Intermediates: inter, CurrentTime: a.now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil || leaf.IsCA {
		return rotor.Caller{}, rotor.ErrNoCredentials
	}
	name := leaf.Subject.String()
	if name == "" && len(leaf.EmailAddresses) > 0 {
		name = leaf.EmailAddresses[0]
	}
	return rotor.Caller{Admin: true, Name: name, Authenticator: NameAdminMTLS,
		Subject: "cert:" + rotor.Fingerprint(leaf.Raw)[:16]}, nil
}
