package authn

import (
	"context"
	"encoding/hex"
	"time"

	"github.com/rotor-dev/rotor"
)

// MTLS accepts a client certificate this CA issued: a renewing workload
// proves itself with the certificate it is about to replace. The TLS layer
// only requests client certificates and leaves verification to MTLS, so a
// certificate from a retired root is refused here and the request can still
// succeed with a token further down the chain. It is safe for concurrent use.
type MTLS struct {
	trust       rotor.TrustSource
	trustDomain string
	now         func() time.Time
}

// NewMTLS returns an authenticator verifying against trust's current bundle
// and accepting identities in trustDomain. now nil means time.Now.
func NewMTLS(trust rotor.TrustSource, trustDomain string, now func() time.Time) *MTLS {
	if now == nil {
		now = time.Now
	}
	return &MTLS{trust: trust, trustDomain: trustDomain, now: now}
}

// Authenticate implements rotor.Authenticator. It applies when the request
// carries client certificates; the caller's Subject is "serial:<hex>".
func (m *MTLS) Authenticate(_ context.Context, cred rotor.Credentials) (rotor.Caller, error) {
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
	if err := m.trust.Trust().VerifyLeaf(chain, m.now()); err != nil {
		return rotor.Caller{}, rotor.WrapError(rotor.EUnauthenticated, err, "client certificate is not valid under this CA's trust bundle")
	}
	if len(leaf.URIs) != 1 {
		return rotor.Caller{}, rotor.Errorf(rotor.EUnauthenticated, "client certificate must carry exactly one SPIFFE URI SAN, it has %d", len(leaf.URIs))
	}
	id, err := rotor.IdentityFromSPIFFEID(leaf.URIs[0], m.trustDomain)
	if err != nil {
		return rotor.Caller{}, rotor.WrapError(rotor.EUnauthenticated, err, "client certificate's URI SAN is not a workload identity in trust domain %s", m.trustDomain)
	}
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != id.DNSName(m.trustDomain) {
		return rotor.Caller{}, rotor.Errorf(rotor.EUnauthenticated, "client certificate's DNS SAN does not match its SPIFFE ID")
	}
	return rotor.Caller{Identity: id, Authenticator: NameMTLS,
		Subject: "serial:" + hex.EncodeToString(leaf.SerialNumber.Bytes())}, nil
}
