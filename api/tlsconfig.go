package api

import "crypto/tls"

// ServerTLSConfig is the TLS configuration the API is served with. getCert
// supplies the server certificate, so the wiring can reload it without a
// restart.
//
// Client certificates are requested but neither required nor verified
// here: verification belongs to the mTLS authenticator, so a workload whose
// certificate chains to a retired root still completes the handshake and
// falls back to its bearer token instead of failing with a TLS alert it
// cannot act on. Session tickets stay on (the default) because a full
// handshake costs the server about twice a certificate issuance.
func ServerTLSConfig(getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: getCert,
		ClientAuth:     tls.RequestClientCert,
	}
}
