package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
)

// helloPath is the api's one endpoint.
const helloPath = "/hello"

// hello is the api's answer: who it thinks called and who answered.
type hello struct {
	Caller string `json:"caller"`
	Server string `json:"server"`
}

type apiConfig struct {
	roleFlags
	Listen string
	Allow  identityList
}

// runAPI is `rotor-demo api`: an HTTPS service on the agent's files that
// accepts only the --allow identities.
func runAPI(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("api", stderr)
	var cfg apiConfig
	cfg.register(fs)
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:8443", "HTTPS listen address")
	fs.Var(&cfg.Allow, "allow", "identities allowed to call, namespace/service-account, comma-separated (default: default/webapp)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(cfg.Allow) == 0 {
		cfg.Allow = identityList{{Namespace: "default", ServiceAccount: "webapp"}}
	}
	log, src, rotations, err := cfg.start(ctx, stderr, "api")
	if err != nil {
		return err
	}

	a := newAPIServer(src, cfg.Allow, log)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := a.httpServer()
	log.Info("api listening", "event", eventListening, "addr", ln.Addr().String(), "allow", cfg.Allow.String())
	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	log.Info("api stopped", "event", eventFinal, "served", a.served.Load(), "refused", a.refused.Load(),
		"rotations", <-rotations, "peer_certificates", a.peers.count())
	return err
}

// apiServer answers helloPath to allowed peers. Safe for concurrent use.
type apiServer struct {
	src     *client.TLSSource
	allow   []rotor.Identity
	log     *slog.Logger
	peers   *peerTracker
	served  atomic.Int64
	refused atomic.Int64
}

func newAPIServer(src *client.TLSSource, allow []rotor.Identity, log *slog.Logger) *apiServer {
	return &apiServer{src: src, allow: allow, log: log, peers: newPeerTracker(log)}
}

// httpServer serves a over mTLS. The handshake already refuses peers not in
// allow; refusals are counted and logged here instead of by net/http.
func (a *apiServer) httpServer() *http.Server {
	conf := a.src.ServerConfig(a.allow...)
	verify := conf.VerifyConnection
	conf.VerifyConnection = func(cs tls.ConnectionState) error {
		err := verify(cs)
		if err != nil {
			a.refused.Add(1)
			a.log.Warn("Refused a peer", "event", eventRefused, "error", err)
		}
		return err
	}
	return &http.Server{
		Handler:           a,
		TLSConfig:         conf,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
}

func (a *apiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != helloPath {
		http.NotFound(w, r)
		return
	}
	// The handshake checked the peer; checking again here means a TLS
	// configuration mistake cannot let anyone else through.
	id, err := a.src.PeerIdentity(r.TLS)
	if err == nil && !slices.Contains(a.allow, id) {
		err = rotor.Errorf(rotor.EForbidden, "peer %s is not allowed", id)
	}
	if err != nil {
		a.refused.Add(1)
		a.log.Warn("Refused a request", "event", eventRefused, "error", err)
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	a.peers.observe(id, r.TLS.PeerCertificates[0].SerialNumber.Text(16))
	a.served.Add(1)
	w.Header().Set("Content-Type", "application/json")
	err = json.NewEncoder(w).Encode(hello{Caller: id.String(), Server: a.src.Identity().String()})
	if err != nil && !errors.Is(err, net.ErrClosed) {
		a.log.Debug("write answer", "error", err)
	}
}
