package linkerd

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/linkerd/identitypb"
)

// EventServing is logged (rotor.LogEvent) once the identity API accepts
// connections. Attributes: addr (host:port, so a caller that asked for
// port 0 learns it) and server_name.
const EventServing = "linkerd.serving"

// DefaultServerIdentity is the identity whose Linkerd name the API's TLS
// certificate carries: Linkerd's proxies verify the identity service as
// LINKERD2_PROXY_IDENTITY_SVC_NAME, which Linkerd's injector sets to
// linkerd-identity.<ns>.serviceaccount.identity.<ns>.<trust domain>, the
// name of service account linkerd-identity in the control plane namespace.
const DefaultServerIdentity = "linkerd/linkerd-identity"

// Settings are rotor-ca serve's flags for this API.
type Settings struct {
	// Listen is the address to serve on; "" leaves the API off.
	Listen string
	// Suffix ends Linkerd identity names (rotor.Policy.LinkerdSuffix).
	Suffix string
	// ServerIdentity is namespace/service-account of the server's
	// certificate name.
	ServerIdentity string
	// Audience is whom service-account tokens must be for.
	Audience string
}

// RegisterFlags adds the settings to fs as flags writing to s.
func (s *Settings) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&s.Listen, "linkerd-listen", "", "serve Linkerd's identity API (gRPC over TLS) on this address, e.g. 0.0.0.0:8080; port 0 picks a free one (default: off)")
	fs.StringVar(&s.Suffix, "linkerd-identity-suffix", rotor.DefaultLinkerdSuffix, "ends Linkerd identity names, <sa>.<ns>.serviceaccount.<suffix>: identity.<control plane namespace>.<trust domain>")
	fs.StringVar(&s.ServerIdentity, "linkerd-server-identity", DefaultServerIdentity, "namespace/service-account whose Linkerd name the identity API's TLS certificate carries: what proxies have as LINKERD2_PROXY_IDENTITY_SVC_NAME")
	fs.StringVar(&s.Audience, "linkerd-token-audience", DefaultAudience, "audience of the service-account tokens proxies present")
}

// ServerName is the DNS name of the API's TLS certificate: the Linkerd
// name of ServerIdentity. Errors are usage errors, worded for the flags.
func (s Settings) ServerName() (string, error) {
	id, err := rotor.ParseIdentity(s.ServerIdentity)
	if err != nil {
		return "", fmt.Errorf("--linkerd-server-identity: %s", rotor.ErrorMessageOf(err))
	}
	name, err := id.LinkerdName(s.Suffix)
	if err != nil {
		return "", fmt.Errorf("--linkerd-server-identity: %s", rotor.ErrorMessageOf(err))
	}
	return name, nil
}

// Validate checks the settings as a whole.
func (s Settings) Validate() error {
	if s.Listen == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(s.Listen); err != nil {
		return fmt.Errorf("--linkerd-listen %s is not host:port", s.Listen)
	}
	if s.Audience == "" {
		return errors.New("--linkerd-token-audience must not be empty")
	}
	_, err := s.ServerName()
	return err
}

// ServeConfig is how the API is served. Listener, Server and
// GetCertificate are required.
type ServeConfig struct {
	Listener net.Listener
	Server   *Server
	// GetCertificate supplies the server certificate (for ServerName), so
	// it can follow the issuer without a restart.
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// ShutdownTimeout is how long calls in flight may take to finish once
	// ctx ends; zero means 15s.
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
	// ServingAttrs are added to the EventServing line.
	ServingAttrs []any
}

// maxMessage caps a request: a CSR is under 4 KiB even with an RSA-8192
// key, and a projected service-account token about 1 KiB.
const maxMessage = 64 << 10

// Serve serves the identity API over TLS until ctx ends, then lets the
// calls in flight finish within ShutdownTimeout. Proxies present no client
// certificate (the token is their credential), so none is asked for.
func Serve(ctx context.Context, cfg ServeConfig) error {
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: cfg.GetCertificate}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(tlsConf)), grpc.MaxRecvMsgSize(maxMessage),
		grpc.ConnectionTimeout(10*time.Second))
	identitypb.RegisterIdentityServer(srv, cfg.Server)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(cfg.Listener) }()
	cfg.Logger.Info("serving Linkerd's identity API", append([]any{rotor.LogEvent, EventServing,
		"addr", cfg.Listener.Addr().String()}, cfg.ServingAttrs...)...)
	select {
	case err := <-errc:
		return fmt.Errorf("serve Linkerd's identity API: %w", err)
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(cfg.ShutdownTimeout):
		srv.Stop()
	}
	return nil
}
