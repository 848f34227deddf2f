package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/rotor-dev/rotor"
)

// TLSSource serves the certificate, key and trust bundle that rotor-agent
// keeps in a directory to Go's crypto/tls, following every rotation without
// a restart: each handshake checks (one readlink) whether ..data moved and,
// if so, loads the new set before answering. A set that fails to load is
// logged and the previous one kept, so a bad write never breaks handshakes.
// It is safe for concurrent use.
type TLSSource struct {
	dir string
	log *slog.Logger

	mu      sync.Mutex // serialises reloads
	cur     atomic.Pointer[tlsState]
	badSeen string // last version that failed to load, logged once
}

// tlsState is one loaded version.
type tlsState struct {
	version     string
	cert        *tls.Certificate // Leaf set
	roots       *x509.CertPool
	trustDomain string
	identity    rotor.Identity
}

// NewTLSSource loads the files in dir (see WriteFiles). It fails if they
// are missing or do not form a key pair with a Rotor SPIFFE identity; run
// `rotor-agent --once` first (an init container) to have them. log may be
// nil.
func NewTLSSource(dir string, log *slog.Logger) (*TLSSource, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &TLSSource{dir: dir, log: log}
	f, version, err := ReadFiles(dir)
	if err != nil {
		return nil, err
	}
	st, err := parseState(f, version)
	if err != nil {
		return nil, err
	}
	s.cur.Store(st)
	return s, nil
}

// parseState checks that the files form a usable set.
func parseState(f Files, version string) (*tlsState, error) {
	cert, err := tls.X509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("version %s: %w", version, err)
	}
	roots, err := rotor.ParseCertificates(f.Bundle)
	if err != nil {
		return nil, fmt.Errorf("version %s: bundle: %w", version, err)
	}
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	td, id, err := LeafIdentity(cert.Leaf)
	if err != nil {
		return nil, fmt.Errorf("version %s: %w", version, err)
	}
	return &tlsState{version: version, cert: &cert, roots: pool, trustDomain: td, identity: id}, nil
}

// LeafIdentity returns the trust domain and identity of a Rotor leaf from
// its one SPIFFE URI SAN.
func LeafIdentity(leaf *x509.Certificate) (trustDomain string, id rotor.Identity, err error) {
	var spiffe []*url.URL
	for _, u := range leaf.URIs {
		if u.Scheme == "spiffe" {
			spiffe = append(spiffe, u)
		}
	}
	if len(spiffe) != 1 {
		return "", rotor.Identity{}, rotor.Errorf(rotor.EForbidden, "certificate %s carries %d SPIFFE IDs, want 1",
			leaf.SerialNumber.Text(16), len(spiffe))
	}
	id, err = rotor.IdentityFromSPIFFEID(spiffe[0], spiffe[0].Host)
	return spiffe[0].Host, id, err
}

// state returns the current set, loading a new version first if ..data
// moved.
func (s *TLSSource) state() *tlsState {
	cur := s.cur.Load()
	version, err := Version(s.dir)
	if err != nil || version == "" || version == cur.version {
		return cur
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur = s.cur.Load(); cur.version == version || version == s.badSeen {
		return cur
	}
	f, got, err := ReadFiles(s.dir)
	var st *tlsState
	if err == nil {
		st, err = parseState(f, got)
	}
	if err != nil {
		s.badSeen = version
		s.log.Warn("keeping the previous certificate: the new files do not load", "dir", s.dir, "error", err)
		return cur
	}
	s.cur.Store(st)
	return st
}

// Identity is the identity of the current certificate.
func (s *TLSSource) Identity() rotor.Identity { return s.state().identity }

// Certificate is the current certificate and key, leaf parsed.
func (s *TLSSource) Certificate() *tls.Certificate { return s.state().cert }

// ServerConfig is a TLS 1.3 server configuration that presents the current
// certificate and requires a client certificate chaining to the current
// bundle, from this trust domain and, if allow is not empty, with one of
// the given identities.
func (s *TLSSource) ServerConfig(allow ...rotor.Identity) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.state().cert, nil
		},
		// Verification happens in VerifyConnection against the bundle of
		// the moment; ClientCAs would freeze the bundle at construction.
		ClientAuth:       tls.RequireAnyClientCert,
		VerifyConnection: s.verifier(x509.ExtKeyUsageClientAuth, allow),
	}
}

// ClientConfig is a TLS 1.3 client configuration that presents the current
// certificate and accepts a server whose certificate chains to the current
// bundle, from this trust domain and, if allow is not empty, with one of
// the given identities. Host names are not checked: in a mesh the SPIFFE
// identity is what names a peer.
func (s *TLSSource) ClientConfig(allow ...rotor.Identity) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return s.state().cert, nil
		},
		// The standard verification would use a RootCAs fixed now and check
		// the host name; VerifyConnection does the chain against the
		// current bundle instead. The handshake still proves possession of
		// the key.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		VerifyConnection:   s.verifier(x509.ExtKeyUsageServerAuth, allow),
	}
}

// PeerIdentity returns the verified identity of a connection's peer made
// with one of this source's configurations, e.g. from http.Request.TLS.
func (s *TLSSource) PeerIdentity(cs *tls.ConnectionState) (rotor.Identity, error) {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return rotor.Identity{}, rotor.Errorf(rotor.EUnauthenticated, "no peer certificate")
	}
	return s.peerIdentity(s.state(), cs.PeerCertificates[0])
}

func (s *TLSSource) peerIdentity(st *tlsState, leaf *x509.Certificate) (rotor.Identity, error) {
	td, id, err := LeafIdentity(leaf)
	if err != nil {
		return rotor.Identity{}, err
	}
	if td != st.trustDomain {
		return rotor.Identity{}, rotor.Errorf(rotor.EForbidden, "peer is from trust domain %s, not %s", td, st.trustDomain)
	}
	return id, nil
}

// verifier checks a peer's chain against the current bundle and its
// identity against allow.
func (s *TLSSource) verifier(usage x509.ExtKeyUsage, allow []rotor.Identity) func(tls.ConnectionState) error {
	allow = slices.Clone(allow)
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("rotor: peer presented no certificate")
		}
		st := s.state()
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		leaf := cs.PeerCertificates[0]
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: st.roots, Intermediates: inter,
			KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			return fmt.Errorf("rotor: peer certificate: %w", err)
		}
		id, err := s.peerIdentity(st, leaf)
		if err != nil {
			return fmt.Errorf("rotor: peer certificate: %w", err)
		}
		if len(allow) > 0 && !slices.Contains(allow, id) {
			return fmt.Errorf("rotor: peer %s is not allowed", id)
		}
		return nil
	}
}
