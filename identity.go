// Package rotor is the core of the Rotor certificate authority: identities,
// issuance and refusal records, the CSR policy and the issuing logic. It
// imports only the standard library; HTTP, databases, HSMs and cloud KMS live
// in adapter packages (api, store, signer, authn, client) around it.
package rotor

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Identity is a workload identity: a Kubernetes-style namespace and service
// account pair. The zero value is "unknown".
type Identity struct {
	Namespace      string `json:"namespace"`
	ServiceAccount string `json:"service_account"`
}

// Kubernetes' own name rules (k8s.io/apimachinery/pkg/util/validation),
// the one place every authenticator and `rotor-ca token create` check
// names against: a name Kubernetes would refuse never reaches a SAN.
var (
	// DNS-1123 label, at most 63 characters: the namespace rule.
	labelRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	// DNS-1123 subdomain, at most 253 characters: dot-separated labels,
	// the service-account rule. "a..b" and "a.-b" are not subdomains.
	subdomainRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

const (
	maxLabel     = 63
	maxSubdomain = 253
)

func isLabel(s string) bool     { return len(s) <= maxLabel && labelRE.MatchString(s) }
func isSubdomain(s string) bool { return len(s) <= maxSubdomain && subdomainRE.MatchString(s) }

// Validate reports whether both parts are valid Kubernetes names, so that
// they can be embedded in DNS and SPIFFE names without escaping.
func (id Identity) Validate() error {
	if !isLabel(id.Namespace) {
		return Errorf(EInvalid, "namespace %q is not a DNS-1123 label", id.Namespace)
	}
	if !isSubdomain(id.ServiceAccount) {
		return Errorf(EInvalid, "service account %q is not a DNS-1123 subdomain", id.ServiceAccount)
	}
	return nil
}

// IsZero reports whether the identity is unknown.
func (id Identity) IsZero() bool { return id == Identity{} }

// String is "namespace/service-account", the form used in logs, or "" for
// the unknown identity.
func (id Identity) String() string {
	if id.IsZero() {
		return ""
	}
	return id.Namespace + "/" + id.ServiceAccount
}

// ParseIdentity reads the String form, namespace/service-account, and
// validates it.
func ParseIdentity(s string) (Identity, error) {
	ns, sa, ok := strings.Cut(s, "/")
	id := Identity{Namespace: ns, ServiceAccount: sa}
	if !ok {
		return Identity{}, Errorf(EInvalid, "identity %q is not namespace/service-account", s)
	}
	return id, id.Validate()
}

// DNSName is the Linkerd-style name carried as DNS SAN and subject CN:
// <sa>.<ns>.serviceaccount.identity.rotor.<trust-domain>.
func (id Identity) DNSName(trustDomain string) string {
	return fmt.Sprintf("%s.%s.serviceaccount.identity.rotor.%s", id.ServiceAccount, id.Namespace, trustDomain)
}

// DefaultLinkerdSuffix ends Linkerd's identity names in a cluster installed
// with Linkerd's defaults: control plane namespace linkerd, trust domain
// cluster.local.
const DefaultLinkerdSuffix = "identity.linkerd.cluster.local"

// LinkerdName is the name Linkerd's identity service gives id, carried as
// the one DNS SAN and the CN: <sa>.<ns>.serviceaccount.<suffix>, where
// suffix is identity.<control-plane-namespace>.<trust-domain>. Linkerd
// requires both parts to be labels, so a service account with a dot has
// no Linkerd name (EForbidden): the name would not say where it ends.
func (id Identity) LinkerdName(suffix string) (string, error) {
	if !isLabel(id.ServiceAccount) {
		return "", Errorf(EForbidden, "service account %q is not a DNS label, so it has no Linkerd identity name", id.ServiceAccount)
	}
	return id.ServiceAccount + "." + id.Namespace + ".serviceaccount." + suffix, nil
}

// SPIFFEID is spiffe://<trust-domain>/ns/<ns>/sa/<sa>, carried as URI SAN.
func (id Identity) SPIFFEID(trustDomain string) *url.URL {
	return &url.URL{Scheme: "spiffe", Host: trustDomain, Path: "/ns/" + id.Namespace + "/sa/" + id.ServiceAccount}
}

// IdentityFromSPIFFEID parses a SPIFFE ID of the form Rotor issues within
// trustDomain.
func IdentityFromSPIFFEID(u *url.URL, trustDomain string) (Identity, error) {
	if u == nil || u.Scheme != "spiffe" || u.Host != trustDomain {
		return Identity{}, Errorf(EInvalid, "%v is not a SPIFFE ID in trust domain %s", u, trustDomain)
	}
	parts := strings.Split(u.Path, "/")
	if len(parts) != 5 || parts[0] != "" || parts[1] != "ns" || parts[3] != "sa" || u.RawQuery != "" || u.Fragment != "" {
		return Identity{}, Errorf(EInvalid, "%v is not of the form spiffe://%s/ns/<ns>/sa/<sa>", u, trustDomain)
	}
	id := Identity{Namespace: parts[2], ServiceAccount: parts[4]}
	if err := id.Validate(); err != nil {
		return Identity{}, err
	}
	return id, nil
}

// ValidateTrustDomain checks that a trust domain is a lowercase DNS name.
func ValidateTrustDomain(td string) error {
	if !isSubdomain(td) {
		return Errorf(EInvalid, "trust domain %q is not a lowercase DNS name", td)
	}
	return nil
}
