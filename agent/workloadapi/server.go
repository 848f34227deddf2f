// Package workloadapi serves the SPIFFE Workload API's X.509 methods on a
// unix socket from what rotor-agent puts in place, so that software that
// speaks the API (go-spiffe's X509Source, Envoy through SPIRE's SDS
// settings, Linkerd's proxy with LINKERD2_PROXY_IDENTITY_SPIRE_SOCKET)
// gets Rotor's certificates without reading files. The JWT and WIT methods
// answer Unimplemented.
//
// It speaks gRPC itself, over net/http's HTTP/2 with prior knowledge (the
// only way gRPC runs on a unix socket), and encodes the two response
// messages with protowire: linking grpc-go would cost every agent, socket
// or not, about 3.5 MB of resident memory (its init functions, and
// golang.org/x/net/trace's text/template, which keeps every exported
// method in the binary), for two server streams.
//
// The agent holds one identity and the socket performs no workload
// attestation: whoever may connect gets the private key. The socket's
// mode and group (Listen) are the access control, as key.pem's are.
package workloadapi

import (
	"context"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/rotor-dev/rotor/agent"
)

// EventServing is logged (rotor.LogEvent) once the socket accepts
// connections. Attributes: socket, mode, group.
const EventServing = "workload_api.serving"

// The methods served, as gRPC names them (go-spiffe's
// proto/spiffe/workload).
const (
	methodFetchX509SVID    = "/SpiffeWorkloadAPI/FetchX509SVID"
	methodFetchX509Bundles = "/SpiffeWorkloadAPI/FetchX509Bundles"
)

// gRPC status codes used here (google.golang.org/grpc/codes).
const (
	codeInvalidArgument = 3
	codeUnimplemented   = 12
	codeUnavailable     = 14
)

// Server serves the Workload API from the Updates it is published. It
// implements agent.Subscriber and http.Handler; Publish and ServeHTTP are
// safe for concurrent use.
type Server struct {
	log *slog.Logger

	mu      sync.Mutex
	cur     *responses    // nil until the first Publish
	changed chan struct{} // closed and replaced by each Publish
}

// responses are the two streams' next messages, gRPC-framed, built once
// per Update.
type responses struct {
	svid    []byte // X509SVIDResponse
	bundles []byte // X509BundlesResponse
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

// newResponses encodes workload.proto's
//
//	X509SVIDResponse { repeated X509SVID svids = 1; }
//	X509SVID { string spiffe_id = 1; bytes x509_svid = 2; bytes x509_svid_key = 3; bytes bundle = 4; }
//	X509BundlesResponse { map<string, bytes> bundles = 2; }
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
	var svid []byte
	svid = appendField(svid, 1, []byte(u.Identity.SPIFFEID(u.TrustDomain).String()))
	svid = appendField(svid, 2, chain)
	svid = appendField(svid, 3, key)
	svid = appendField(svid, 4, bundle)
	var entry []byte // map entry: key = 1, value = 2
	entry = appendField(entry, 1, []byte("spiffe://"+u.TrustDomain))
	entry = appendField(entry, 2, bundle)
	return &responses{svid: frame(appendField(nil, 1, svid)), bundles: frame(appendField(nil, 2, entry))}, nil
}

// appendField appends a length-delimited field (proto3: omitted if empty).
func appendField(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// frame is msg as a gRPC length-prefixed message, uncompressed.
func frame(msg []byte) []byte {
	b := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
	return append(b, msg...)
}

// headerKey is the metadata every Workload API call carries, so that a
// request forwarded by a confused proxy (SSRF) cannot fetch an SVID.
const headerKey = "workload.spiffe.io"

// ServeHTTP serves one gRPC call: a server stream for the X.509 methods,
// Unimplemented for the others. Calls without "workload.spiffe.io: true"
// are refused InvalidArgument, as the specification requires.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.ProtoMajor != 2 || !isGRPC(r.Header.Get("Content-Type")) {
		http.Error(w, "gRPC only", http.StatusUnsupportedMediaType)
		return
	}
	w.Header().Set("Content-Type", "application/grpc")
	if v := r.Header.Values(headerKey); len(v) != 1 || v[0] != "true" {
		finish(w, false, codeInvalidArgument, "security header missing from request")
		return
	}
	pick := func(rs *responses) []byte { return rs.svid }
	switch r.URL.Path {
	case methodFetchX509SVID:
	case methodFetchX509Bundles:
		pick = func(rs *responses) []byte { return rs.bundles }
	default:
		finish(w, false, codeUnimplemented, "method "+r.URL.Path+" not implemented")
		return
	}
	s.stream(r.Context(), w, pick)
}

// isGRPC reports whether a Content-Type is gRPC's: application/grpc or
// application/grpc+proto (or ;params).
func isGRPC(ct string) bool {
	rest, ok := strings.CutPrefix(ct, "application/grpc")
	return ok && (rest == "" || rest[0] == '+' || rest[0] == ';')
}

// finish ends the call with a gRPC status: in the headers if nothing was
// sent yet (Trailers-Only), else in the trailers.
func finish(w http.ResponseWriter, sent bool, code int, msg string) {
	prefix := ""
	if sent {
		prefix = http.TrailerPrefix
	}
	w.Header().Set(prefix+"Grpc-Status", strconv.Itoa(code))
	w.Header().Set(prefix+"Grpc-Message", percentEncode(msg))
	if !sent {
		w.WriteHeader(http.StatusOK)
	}
}

// percentEncode is gRPC's encoding of grpc-message: bytes outside
// printable ASCII, and '%', as %XX. A method path quoted in a message is
// the caller's and may hold either.
func percentEncode(msg string) string {
	var b strings.Builder
	for i := range len(msg) {
		if c := msg[i]; c < 0x20 || c > 0x7e || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// stream sends the current response and each later one until ctx ends
// (the caller went away, or Serve is stopping). A Publish that lands while
// a send is under way is not lost: the next wait sees its channel already
// closed.
func (s *Server) stream(ctx context.Context, w http.ResponseWriter, pick func(*responses) []byte) {
	rc := http.NewResponseController(w)
	var sent *responses
	for {
		s.mu.Lock()
		cur, changed := s.cur, s.changed
		s.mu.Unlock()
		if cur != nil && cur != sent {
			if _, err := w.Write(pick(cur)); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
			sent = cur
		}
		select {
		case <-ctx.Done():
			finish(w, sent != nil, codeUnavailable, "the Workload API stream ended")
			return
		case <-changed:
		}
	}
}
