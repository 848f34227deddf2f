package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/client"
	"github.com/rotor-dev/rotor/internal/cli"
)

// Events the service roles log as the "event" attribute. The demo reads
// them from the roles' JSON logs; they are the roles' only protocol with it.
const (
	eventListening = "listening"        // api: addr
	eventCert      = "certificate"      // serial, not_after, rotation (0 for the first)
	eventPeerCert  = "peer-certificate" // peer, serial, seen
	eventRefused   = "refused"          // api: a peer failed the TLS checks
	eventFailed    = "failed"           // webapp: kind, error
	eventStats     = "stats"            // webapp: requests, failed (totals)
	eventFinal     = "final"            // at exit: totals and rotations
)

// roleFlags are the flags both service roles take.
type roleFlags struct {
	Certs   string
	Wait    time.Duration
	Logging cli.LogFlags
}

func (r *roleFlags) register(fs *cli.FlagSet) {
	fs.StringVar(&r.Certs, "certs", "/var/run/rotor", "directory where rotor-agent keeps cert.pem, key.pem and bundle.pem")
	fs.DurationVar(&r.Wait, "wait", 2*time.Minute, "how long to wait at start for the agent's first certificate")
	r.Logging.Register(fs)
}

func (r *roleFlags) logger(w io.Writer, role string) (*slog.Logger, error) {
	log, err := r.Logging.Logger(w)
	if err != nil {
		return nil, err
	}
	return log.With("role", role), nil
}

// start does what both roles do first: make the logger, wait for the
// agent's first certificate, and watch for rotations. The channel yields
// the number of rotations once ctx ends.
func (r *roleFlags) start(ctx context.Context, w io.Writer, role string) (*slog.Logger, *client.TLSSource, <-chan int, error) {
	log, err := r.logger(w, role)
	if err != nil {
		return nil, nil, nil, err
	}
	src, err := waitForSource(ctx, r.Certs, r.Wait, log)
	if err != nil {
		return nil, nil, nil, err
	}
	rotations := make(chan int, 1)
	go func() { rotations <- watchCertificates(ctx, src, log, 250*time.Millisecond) }()
	return log, src, rotations, nil
}

// parseIdentity reads "namespace/service-account".
func parseIdentity(s string) (rotor.Identity, error) {
	ns, sa, ok := strings.Cut(s, "/")
	if !ok {
		return rotor.Identity{}, rotor.Errorf(rotor.EInvalid, "identity %q is not namespace/service-account", s)
	}
	id := rotor.Identity{Namespace: ns, ServiceAccount: sa}
	return id, id.Validate()
}

// identityList is a flag taking comma-separated identities, repeatable.
type identityList []rotor.Identity

func (l *identityList) String() string {
	s := make([]string, len(*l))
	for i, id := range *l {
		s[i] = id.String()
	}
	return strings.Join(s, ",")
}

func (l *identityList) Set(v string) error {
	for part := range strings.SplitSeq(v, ",") {
		id, err := parseIdentity(strings.TrimSpace(part))
		if err != nil {
			return err
		}
		*l = append(*l, id)
	}
	return nil
}

// waitForSource polls dir until the agent has written a usable set: in
// docker-compose the service and its agent start together on an empty
// volume.
func waitForSource(ctx context.Context, dir string, wait time.Duration, log *slog.Logger) (*client.TLSSource, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	logged := false
	for {
		src, err := client.NewTLSSource(dir, log)
		if err == nil {
			return src, nil
		}
		if !logged {
			log.Info("waiting for rotor-agent's first certificate", "dir", dir, "error", err)
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no usable certificate in %s after %s: %w", dir, wait, errors.Join(err, ctx.Err()))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// watchCertificates logs the certificate in use and each rotation, and
// returns the number of rotations when ctx ends. Certificate() also makes
// the source load a new version, so a rotation shows within one tick even
// when no handshake happens.
func watchCertificates(ctx context.Context, src *client.TLSSource, log *slog.Logger, every time.Duration) int {
	last, rotations := "", 0
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		leaf := src.Certificate().Leaf
		if serial := leaf.SerialNumber.Text(16); serial != last {
			msg := "Using certificate"
			if last != "" {
				rotations++
				msg = "Rotated to a new certificate"
			}
			log.Info(msg, "event", eventCert, "identity", src.Identity().String(), "serial", serial,
				"not_after", leaf.NotAfter, "rotation", rotations)
			last = serial
		}
		select {
		case <-ctx.Done():
			return rotations
		case <-t.C:
		}
	}
}

// peerTracker notes the distinct certificates a peer presents, to show that
// the peer's rotations reach this side's handshakes. Safe for concurrent use.
type peerTracker struct {
	log  *slog.Logger
	mu   sync.Mutex
	seen map[string]bool
}

func newPeerTracker(log *slog.Logger) *peerTracker {
	return &peerTracker{log: log, seen: map[string]bool{}}
}

func (p *peerTracker) observe(peer rotor.Identity, serial string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen[serial] {
		return
	}
	p.seen[serial] = true
	p.log.Info("Peer presents a new certificate", "event", eventPeerCert, "peer", peer.String(),
		"serial", serial, "seen", len(p.seen))
}

func (p *peerTracker) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.seen)
}
