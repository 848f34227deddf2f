// Package workloadapi serves the SPIFFE Workload API's X.509 methods on a
// unix socket from what rotor-agent puts in place, so that software that
// speaks the API (go-spiffe's X509Source, Envoy through SPIRE's SDS
// settings, Linkerd's proxy with LINKERD2_PROXY_IDENTITY_SPIRE_SOCKET)
// gets Rotor's certificates without reading files. It uses go-spiffe's
// generated server; the JWT and WIT methods answer Unimplemented.
//
// The agent holds one identity and the socket performs no workload
// attestation: whoever may connect gets the private key. The socket's
// mode and group (Listen) are the access control, as key.pem's are.
package workloadapi

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"sync"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/rotor-dev/rotor/agent"
)

// EventServing is logged (rotor.LogEvent) once the socket accepts
// connections. Attributes: socket, mode, group.
const EventServing = "workload_api.serving"

// Server serves the Workload API from the Updates it is published. It
// implements agent.Subscriber; Publish and the gRPC methods are safe for
// concurrent use.
type Server struct {
	workload.UnimplementedSpiffeWorkloadAPIServer
	log *slog.Logger

	mu      sync.Mutex
	cur     *responses    // nil until the first Publish
	changed chan struct{} // closed and replaced by each Publish
}

// responses are the two streams' next messages, built once per Update.
type responses struct {
	svid    *workload.X509SVIDResponse
	bundles *workload.X509BundlesResponse
}

// New makes a Server with nothing to serve yet: streams opened before the
// first Publish wait for it.
func New(log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{log: log, changed: make(chan struct{})}
}

// Publish implements agent.Subscriber: every open stream is sent u.
func (s *Server) Publish(u agent.Update) {
	r, err := newResponses(u)
	if err != nil {
		s.log.Error("Cannot serve the new certificate on the Workload API socket; streams keep the previous one",
			"serial", u.Certificate.Leaf.SerialNumber.Text(16), "error", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur = r
	close(s.changed)
	s.changed = make(chan struct{})
}

func newResponses(u agent.Update) (*responses, error) {
	key, err := x509.MarshalPKCS8PrivateKey(u.Certificate.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("encode the key as PKCS#8: %w", err)
	}
	var chain, bundle []byte
	for _, der := range u.Certificate.Certificate { // leaf first, as the API wants
		chain = append(chain, der...)
	}
	for _, r := range u.Bundle.Roots {
		bundle = append(bundle, r.Raw...)
	}
	return &responses{
		svid: &workload.X509SVIDResponse{Svids: []*workload.X509SVID{{
			SpiffeId: u.Identity.SPIFFEID(u.TrustDomain).String(),
			X509Svid: chain, X509SvidKey: key, Bundle: bundle}}},
		bundles: &workload.X509BundlesResponse{Bundles: map[string][]byte{"spiffe://" + u.TrustDomain: bundle}},
	}, nil
}

// FetchX509SVID streams the SVID now (or once there is one) and again
// after every Publish, until the caller goes away.
func (s *Server) FetchX509SVID(_ *workload.X509SVIDRequest, stream grpc.ServerStreamingServer[workload.X509SVIDResponse]) error {
	return s.stream(stream.Context(), func(r *responses) error { return stream.Send(r.svid) })
}

// FetchX509Bundles streams the trust domain's bundle as FetchX509SVID
// streams the SVID.
func (s *Server) FetchX509Bundles(_ *workload.X509BundlesRequest, stream grpc.ServerStreamingServer[workload.X509BundlesResponse]) error {
	return s.stream(stream.Context(), func(r *responses) error { return stream.Send(r.bundles) })
}

// stream sends the current responses and each later one until ctx ends.
// A Publish that lands while a send is under way is not lost: the next
// wait sees its channel already closed.
func (s *Server) stream(ctx context.Context, send func(*responses) error) error {
	var sent *responses
	for {
		s.mu.Lock()
		cur, changed := s.cur, s.changed
		s.mu.Unlock()
		if cur != nil && cur != sent {
			if err := send(cur); err != nil {
				return err
			}
			sent = cur
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

// headerKey is the metadata every Workload API call carries, so that a
// request forwarded by a confused proxy (SSRF) cannot fetch an SVID.
const headerKey = "workload.spiffe.io"

// checkHeader refuses calls without "workload.spiffe.io: true", with
// InvalidArgument as the specification requires.
func checkHeader(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(headerKey); len(v) != 1 || v[0] != "true" {
		return status.Error(codes.InvalidArgument, "security header missing from request")
	}
	return nil
}

// NewGRPCServer is a gRPC server with s registered behind the header
// check, for Serve.
func (s *Server) NewGRPCServer() *grpc.Server {
	g := grpc.NewServer(
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := checkHeader(ctx); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := checkHeader(ss.Context()); err != nil {
				return err
			}
			return h(srv, ss)
		}))
	workload.RegisterSpiffeWorkloadAPIServer(g, s)
	return g
}
