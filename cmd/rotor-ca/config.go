package main

import (
	"flag"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/signer"
)

// serveConfig is everything "rotor-ca serve" is told, from flags and their
// ROTOR_* environment twins.
type serveConfig struct {
	commonFlags

	Listen   string
	TLSCert  string
	TLSKey   string
	TLSNames string

	TrustDomain string
	CertTTL     time.Duration
	MaxCertTTL  time.Duration
	ClockSkew   time.Duration
	SignTimeout time.Duration
	RateLimit   float64
	RateBurst   int

	issuerSettings
	IssuerConfig   string
	TrustBundle    string
	ReloadInterval time.Duration
	RootLifetime   time.Duration
	IssuerLifetime time.Duration

	StaticTokens bool
	MTLSRenewal  bool
	JWTIssuer    string
	JWTAudience  string
	JWTJWKSFile  string
	JWTJWKSURL   string
	JWTJWKSCA    string

	TokenReview          string
	TokenReviewCAFile    string
	TokenReviewTokenFile string
	TokenReviewAudience  string

	ShutdownTimeout time.Duration
}

func (c *serveConfig) register(fs *flag.FlagSet) {
	c.commonFlags.register(fs)
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:8443", "HTTPS listen address")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "serving certificate chain PEM (default: issue one from the CA's own issuer)")
	fs.StringVar(&c.TLSKey, "tls-key", "", "serving certificate key PEM (with --tls-cert)")
	fs.StringVar(&c.TLSNames, "tls-names", "localhost,127.0.0.1", "comma-separated DNS names and IPs of the self-issued serving certificate")

	fs.StringVar(&c.TrustDomain, "trust-domain", "cluster.local", "trust domain: ends DNS identities and is the SPIFFE ID's host")
	const ttlHelp = "lifetime of issued certificates"
	fs.DurationVar(&c.CertTTL, "cert-ttl", 24*time.Hour, ttlHelp)
	fs.DurationVar(&c.CertTTL, "identity-issuance-lifetime", 24*time.Hour, "alias of --cert-ttl (Linkerd's name)")
	fs.DurationVar(&c.CertTTL, "identity-issuer-interval", 24*time.Hour, "alias of --cert-ttl")
	fs.DurationVar(&c.MaxCertTTL, "max-cert-ttl", 0, "longest lifetime a request may ask for (default: the larger of --cert-ttl and 24h)")
	fs.DurationVar(&c.ClockSkew, "clock-skew", 20*time.Second, "NotBefore is backdated by this much for peers with slow clocks")
	fs.DurationVar(&c.SignTimeout, "sign-timeout", 5*time.Second, "deadline for one signature by the issuing key")
	fs.Float64Var(&c.RateLimit, "rate-limit", 0, "issuances per second allowed per identity, 0 for no limit")
	fs.IntVar(&c.RateBurst, "rate-burst", 20, "burst allowed per identity above --rate-limit")

	c.issuerSettings.register(fs, true)
	fs.StringVar(&c.IssuerConfig, "issuer-config", "", "file of issuer settings (issuer-cert=…, signer=…, the names of these flags), as `rotor-ca init` writes; wins over the flags and is re-read on SIGHUP and when it changes")
	fs.StringVar(&c.TrustBundle, "trust-bundle", "", "PEM file of the root certificates served at /v1/bundle; may hold several during a root rotation; re-read on SIGHUP and when it changes (default: <data-dir>/bundle.pem)")
	fs.DurationVar(&c.ReloadInterval, "reload-interval", 5*time.Second, "how often to check the issuer and bundle files for changes; 0: only on SIGHUP")
	fs.DurationVar(&c.RootLifetime, "root-lifetime", 10*365*24*time.Hour, "lifetime of a created development root CA")
	fs.DurationVar(&c.IssuerLifetime, "issuer-lifetime", 365*24*time.Hour, "lifetime of a created development issuing CA")

	fs.BoolVar(&c.StaticTokens, "static-tokens", true, "accept static tokens made by \"rotor-ca token create\"")
	fs.BoolVar(&c.MTLSRenewal, "mtls-renewal", true, "accept a still-valid certificate from this CA, presented as TLS client certificate, as its identity")
	fs.StringVar(&c.JWTIssuer, "jwt-issuer", "", "accept Kubernetes service-account JWTs from this issuer (needs --jwt-jwks-file or --jwt-jwks-url)")
	fs.StringVar(&c.JWTAudience, "jwt-audience", "rotor", "audience required in service-account JWTs")
	fs.StringVar(&c.JWTJWKSFile, "jwt-jwks-file", "", "JWKS file with the service-account signing keys")
	fs.StringVar(&c.JWTJWKSURL, "jwt-jwks-url", "", "https URL of the JWKS with the service-account signing keys")
	fs.StringVar(&c.JWTJWKSCA, "jwt-jwks-ca-file", "", "CA bundle to verify --jwt-jwks-url (default: system roots)")
	fs.StringVar(&c.TokenReview, "tokenreview", "", "verify bearer tokens with the Kubernetes TokenReview API: \"in-cluster\" or the API server's https URL")
	fs.StringVar(&c.TokenReviewCAFile, "tokenreview-ca-file", "", "CA bundle of the API server (with a --tokenreview URL)")
	fs.StringVar(&c.TokenReviewTokenFile, "tokenreview-token-file", "", "file with the bearer token rotor-ca presents to the API server (with a --tokenreview URL)")
	fs.StringVar(&c.TokenReviewAudience, "tokenreview-audience", "rotor", "audience the reviewed token must have")

	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long requests in flight may take to finish on SIGTERM")
}

// policy is the core policy the flags describe.
func (c *serveConfig) policy() rotor.Policy {
	return rotor.Policy{TrustDomain: c.TrustDomain, DefaultTTL: c.CertTTL, MaxTTL: c.MaxCertTTL, ClockSkew: c.ClockSkew}
}

// Validate fills derived defaults and checks the configuration as a whole.
func (c *serveConfig) Validate() error {
	if err := c.resolve(); err != nil {
		return err
	}
	if c.MaxCertTTL == 0 {
		c.MaxCertTTL = max(c.CertTTL, 24*time.Hour)
	}
	if err := c.policy().Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("%w: --listen %q: %v", errUsage, c.Listen, err)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("%w: --tls-cert and --tls-key go together", errUsage)
	}
	if c.TLSCert == "" && len(c.tlsNames()) == 0 {
		return fmt.Errorf("%w: --tls-names is empty", errUsage)
	}
	switch {
	case c.devDefaults() && c.Signer != signer.BackendFile:
		return fmt.Errorf("%w: --signer %s needs --issuer-cert (or --issuer-config) and --trust-bundle; `rotor-ca init --signer %s` makes them", errUsage, c.Signer, c.Signer)
	case c.devDefaults() && c.IssuerKey != "":
		return fmt.Errorf("%w: --issuer-key goes with --issuer-cert", errUsage)
	case !c.devDefaults() && c.TrustBundle == "":
		return fmt.Errorf("%w: --trust-bundle is required with --issuer-cert or --issuer-config", errUsage)
	case c.ReloadInterval < 0:
		return fmt.Errorf("%w: --reload-interval must not be negative", errUsage)
	}
	if c.JWTIssuer != "" && (c.JWTJWKSFile == "") == (c.JWTJWKSURL == "") {
		return fmt.Errorf("%w: --jwt-issuer needs exactly one of --jwt-jwks-file and --jwt-jwks-url", errUsage)
	}
	if c.JWTIssuer == "" && (c.JWTJWKSFile != "" || c.JWTJWKSURL != "") {
		return fmt.Errorf("%w: --jwt-jwks-file/--jwt-jwks-url need --jwt-issuer", errUsage)
	}
	if c.TokenReview != "" && c.TokenReview != "in-cluster" && !strings.HasPrefix(c.TokenReview, "https://") {
		return fmt.Errorf("%w: --tokenreview must be \"in-cluster\" or an https:// URL", errUsage)
	}
	if c.RateLimit < 0 || c.RateBurst < 1 {
		return fmt.Errorf("%w: --rate-limit must be >= 0 and --rate-burst >= 1", errUsage)
	}
	if c.SignTimeout <= 0 || c.ShutdownTimeout <= 0 {
		return fmt.Errorf("%w: --sign-timeout and --shutdown-timeout must be positive", errUsage)
	}
	return nil
}

// devDefaults reports whether serve runs on the embedded development PKI.
func (c *serveConfig) devDefaults() bool { return c.IssuerCert == "" && c.IssuerConfig == "" }

func (c *serveConfig) tlsNames() []string {
	var names []string
	for _, n := range strings.Split(c.TLSNames, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	return names
}
