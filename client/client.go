// Package client talks to a Rotor CA over its REST API (issue a certificate,
// fetch the trust bundle, look an issuance up) and gives Go services a TLS
// configuration that follows the files rotor-agent writes, so a workload can
// be its own mTLS proxy.
//
// Every error the client returns for a request is a *rotor.Error, so callers
// decide with rotor.ErrorCodeOf(err).Retryable() whether to try again later
// (503, 429, rotor.ECAUnreachable) or to fix the request or the trust
// (other 4xx, rotor.ECAUntrusted).
package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rotor-dev/rotor"
)

// DefaultTimeout bounds one request, connection included, when Config
// leaves Timeout zero.
const DefaultTimeout = 10 * time.Second

// Config says where the CA is and how to trust it.
type Config struct {
	// URL is the CA's base URL, e.g. https://rotor.example:8443.
	URL string
	// Roots verify the CA's serving certificate; nil means the system
	// roots. Use the Rotor root (root.crt or a fetched bundle).
	Roots *x509.CertPool
	// Timeout bounds each request, connecting included; zero means
	// DefaultTimeout.
	Timeout time.Duration
	// UserAgent is sent with every request; empty means "rotor-client".
	UserAgent string
}

// Client is a Rotor CA client. It is safe for concurrent use and immutable:
// to trust a new bundle, make a new Client.
type Client struct {
	base    *url.URL
	cfg     Config
	tlsConf *tls.Config
	// http reuses connections and never presents a client certificate;
	// mTLS requests get a connection of their own (see withCertificate).
	http *http.Client
}

// New checks cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	base, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("client: CA URL: %w", err)
	}
	if base.Scheme != "https" || base.Host == "" {
		return nil, fmt.Errorf("client: CA URL %q must be https://host[:port]", cfg.URL)
	}
	base.Path = strings.TrimSuffix(base.Path, "/")
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "rotor-client"
	}
	tlsConf := &tls.Config{RootCAs: cfg.Roots, MinVersion: tls.VersionTLS12}
	return &Client{base: base, cfg: cfg, tlsConf: tlsConf,
		http: &http.Client{Timeout: cfg.Timeout, Transport: newTransport(tlsConf, false)}}, nil
}

// newTransport is http.DefaultTransport's shape with our TLS settings,
// but no handshake deadline of its own: the request's Timeout bounds the
// handshake too. A CA in a renewal storm can take longer than a few
// seconds to get to a handshake, and one given up half-done is CPU it
// spent for nothing, which the retry asks it to spend again.
func newTransport(tlsConf *tls.Config, oneShot bool) *http.Transport {
	return &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     tlsConf,
		IdleConnTimeout:     90 * time.Second,
		MaxIdleConnsPerHost: 4,
		ForceAttemptHTTP2:   true,
		DisableKeepAlives:   oneShot,
	}
}

// withCertificate returns an HTTP client that presents cert over a fresh
// connection. The server reads the client certificate from the handshake, so
// a pooled connection made earlier (with no certificate, or an older one)
// would authenticate as whatever it was made with; renewals are rare, so one
// handshake each costs nothing.
func (c *Client) withCertificate(cert *tls.Certificate) *http.Client {
	conf := c.tlsConf.Clone()
	conf.Certificates = []tls.Certificate{*cert}
	return &http.Client{Timeout: c.cfg.Timeout, Transport: newTransport(conf, true)}
}

// CloseIdleConnections closes pooled connections, e.g. before dropping the
// Client for one with a new bundle.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// newRequest builds a request to path below the base URL.
func (c *Client) newRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	u := *c.base
	u.Path += path
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, rotor.WrapError(rotor.EInvalid, err, "cannot build request for %s", path)
	}
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	return req, nil
}

// do sends req with hc and returns the response if its status is one of
// want; any other status becomes the coded error its problem document (or,
// failing that, its status) describes. The caller closes the body.
func (c *Client) do(hc *http.Client, req *http.Request, want ...int) (*http.Response, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return nil, transportError(req, err)
	}
	for _, s := range want {
		if resp.StatusCode == s {
			return resp, nil
		}
	}
	defer resp.Body.Close()
	return nil, responseError(resp)
}
