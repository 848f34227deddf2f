package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/rotor-dev/rotor"
)

// Bundle fetches the trust bundle. With known set it sends known's
// fingerprint as If-None-Match and returns known itself when the CA answers
// 304, so polling costs one small request.
func (c *Client) Bundle(ctx context.Context, known *rotor.Bundle) (*rotor.Bundle, error) {
	return c.fetchBundle(ctx, c.http, known)
}

func (c *Client) fetchBundle(ctx context.Context, hc *http.Client, known *rotor.Bundle) (*rotor.Bundle, error) {
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/bundle", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", rotor.MediaPEMChain)
	if known != nil {
		req.Header.Set("If-None-Match", `"`+known.Fingerprint+`"`)
	}
	resp, err := c.do(hc, req, http.StatusOK, http.StatusNotModified)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified {
		if known == nil {
			return nil, rotor.Errorf(rotor.EInternal, "CA answered 304 to an unconditional bundle request")
		}
		return known, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, rotor.MaxResponse))
	if err != nil {
		return nil, transportError(req, err)
	}
	roots, err := rotor.ParseCertificates(body)
	if err != nil {
		return nil, rotor.WrapError(rotor.EInternal, err, "CA answered an unparsable bundle")
	}
	b, err := rotor.NewBundle(roots)
	if err != nil {
		return nil, rotor.WrapError(rotor.EInternal, err, "CA answered an invalid bundle")
	}
	// The ETag is the fingerprint of what the server meant to send: a
	// mismatch means the body was damaged or cut on the way.
	if etag := strings.Trim(resp.Header.Get("ETag"), `"`); etag != "" && etag != b.Fingerprint {
		return nil, rotor.Errorf(rotor.EInternal, "bundle fingerprint %s does not match its ETag %s", b.Fingerprint, etag)
	}
	return b, nil
}

// FetchBundlePinned makes first contact with a CA known only by the SHA-256
// fingerprint of its root (hex, colons and a "sha256:" prefix allowed): it
// fetches the bundle without trusting anyone, then accepts it only if it
// holds the pinned root (or its fingerprint is the pin) and the CA's serving
// chain from that very connection verifies against it. cfg.Roots is
// ignored. A pin that does not match gives rotor.ECAUntrusted.
func FetchBundlePinned(ctx context.Context, cfg Config, fingerprint string) (*rotor.Bundle, error) {
	pin, err := rotor.ParseFingerprint(fingerprint)
	if err != nil {
		return nil, err
	}
	c, err := New(cfg)
	if err != nil {
		return nil, err
	}
	var (
		mu   sync.Mutex
		seen []*x509.Certificate
	)
	conf := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Chain verification is deferred until the bundle is in hand (below);
		// the handshake still proves the server holds the leaf's key.
		InsecureSkipVerify: true, //nolint:gosec // verified against the pinned root below
		VerifyConnection: func(cs tls.ConnectionState) error {
			mu.Lock()
			defer mu.Unlock()
			seen = cs.PeerCertificates
			return nil
		},
	}
	hc := &http.Client{Timeout: c.cfg.Timeout, Transport: newTransport(conf, true)}
	b, err := c.fetchBundle(ctx, hc, nil)
	if err != nil {
		return nil, err
	}
	if !b.Holds(pin) {
		return nil, rotor.Errorf(rotor.ECAUntrusted, "the CA's bundle %s holds no root with fingerprint %s", b.Fingerprint, pin)
	}
	mu.Lock()
	chain := seen
	mu.Unlock()
	if len(chain) == 0 {
		return nil, rotor.Errorf(rotor.ECAUntrusted, "the CA presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, cert := range chain[1:] {
		inter.AddCert(cert)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: b.Pool(), Intermediates: inter,
		DNSName: c.base.Hostname(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return nil, rotor.WrapError(rotor.ECAUntrusted, err, "the CA's serving certificate does not chain to the pinned root")
	}
	return b, nil
}
