// Package linkerd serves Linkerd's identity API,
// io.linkerd.proxy.identity.Identity/Certify, from the core CA, so that
// Linkerd's proxies get their certificates from Rotor unchanged: same
// names, same checks, same error codes as Linkerd's own identity service.
// It decides nothing itself: the token goes through the CA's authenticator
// chain (with Linkerd's audience), the CSR and the name through the CA's
// policy (rotor.NamingLinkerd), and every issuance and refusal into the
// CA's audit log.
package linkerd

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/linkerd/identitypb"
)

// DefaultAudience is the audience of the service-account tokens Linkerd's
// proxies present: the projected volume Linkerd's injector mounts asks for
// it.
const DefaultAudience = "identity.l5d.io"

// Authenticator is the audit rows' authenticator for issuances through
// this API; the token subject says which credential it was (a Kubernetes
// username, or a static token's subject).
const Authenticator = "linkerd"

// Config wires a Server. CA is required.
type Config struct {
	CA *rotor.CA
	// Audience is whom bearer tokens must be for; "" means DefaultAudience.
	Audience string
	// RequestTimeout bounds each call; zero means 30s, as the HTTP API.
	RequestTimeout time.Duration
}

// Server implements identitypb.IdentityServer. It is safe for concurrent
// use.
type Server struct {
	identitypb.UnimplementedIdentityServer
	cfg Config
}

// New checks cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.CA == nil {
		return nil, fmt.Errorf("linkerd identity server: the CA is required")
	}
	if cfg.Audience == "" {
		cfg.Audience = DefaultAudience
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	return &Server{cfg: cfg}, nil
}

// Certify checks the request as Linkerd's identity service does, then has
// the CA authenticate the token and issue the leaf Linkerd would, and
// answers it with the issuer's chain. Errors are gRPC statuses (Code).
func (s *Server) Certify(ctx context.Context, req *identitypb.CertifyRequest) (*identitypb.CertifyResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	ca := s.cfg.CA
	// A token read from a file may end in a newline; Kubernetes' never do.
	cred := rotor.Credentials{BearerToken: string(bytes.TrimSpace(req.GetToken())), RemoteAddr: remoteAddr(ctx),
		Audience: s.cfg.Audience}
	if err := checkRequest(req, cred.BearerToken); err != nil {
		return nil, statusOf(ca.Refuse(ctx, cred.RemoteAddr, rotor.Caller{}, err))
	}
	caller, err := ca.Authenticate(ctx, cred)
	if err != nil {
		return nil, statusOf(err)
	}
	caller.Authenticator = Authenticator
	iss, issuer, err := ca.IssueFor(ctx, caller, rotor.IssueRequest{CSR: req.GetCertificateSigningRequest(),
		Credentials: cred, Naming: rotor.NamingLinkerd, Name: req.GetIdentity()})
	if err != nil {
		return nil, statusOf(err)
	}
	chain := make([][]byte, len(issuer.Chain))
	for i, c := range issuer.Chain {
		chain[i] = c.Raw
	}
	return &identitypb.CertifyResponse{LeafCertificate: iss.Certificate, IntermediateCertificates: chain,
		ValidUntil: timestamppb.New(iss.NotAfter)}, nil
}

// checkRequest refuses what Linkerd's identity service refuses before
// anything else: a missing identity, token or CSR (EInvalid).
func checkRequest(req *identitypb.CertifyRequest, token string) error {
	switch {
	case req.GetIdentity() == "":
		return rotor.Errorf(rotor.EInvalid, "missing identity")
	case token == "":
		return rotor.Errorf(rotor.EInvalid, "missing token")
	case len(req.GetCertificateSigningRequest()) == 0:
		return rotor.Errorf(rotor.EInvalid, "missing certificate signing request")
	}
	return nil
}

// remoteAddr is the caller's address, for the audit log.
func remoteAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

// statusOf answers a refusal with its gRPC code (Code) and its caller-safe
// message; the cause stays in the CA's log.
func statusOf(err error) error {
	return status.Error(Code(rotor.ErrorCodeOf(err)), rotor.ErrorMessageOf(err))
}

// codeTable is how Linkerd's identity service would answer each refusal:
// malformed requests InvalidArgument; a CSR naming anything but the
// caller, a token that does not authenticate, and a token for another
// service account all FailedPrecondition, as Linkerd answers them (it has
// no Unauthenticated); outages Unavailable, so proxies retry. Codes Linkerd
// has no counterpart of take the gRPC code of their meaning.
var codeTable = map[rotor.ErrorCode]codes.Code{
	rotor.EInvalid:           codes.InvalidArgument,
	rotor.EBadCSR:            codes.InvalidArgument, // Linkerd: a CSR that does not parse
	rotor.EUnsupportedMedia:  codes.InvalidArgument,
	rotor.EUnauthenticated:   codes.FailedPrecondition,
	rotor.EForbidden:         codes.FailedPrecondition,
	rotor.EConflict:          codes.FailedPrecondition,
	rotor.EDenied:            codes.PermissionDenied,
	rotor.ENotFound:          codes.NotFound,
	rotor.EMethodNotAllowed:  codes.Unimplemented,
	rotor.ETooLarge:          codes.ResourceExhausted,
	rotor.ERateLimited:       codes.ResourceExhausted,
	rotor.EOverloaded:        codes.Unavailable,
	rotor.EStoreUnavailable:  codes.Unavailable,
	rotor.ESignerUnavailable: codes.Unavailable,
	rotor.EAuthUnavailable:   codes.Unavailable,
	rotor.ECAUnreachable:     codes.Unavailable,
	rotor.ECAUntrusted:       codes.Unavailable,
	rotor.EInternal:          codes.Internal,
}

// Code is the gRPC code Certify answers a refusal of code c with; an
// unknown code is Internal.
func Code(c rotor.ErrorCode) codes.Code {
	if g, ok := codeTable[c]; ok {
		return g
	}
	return codes.Internal
}
