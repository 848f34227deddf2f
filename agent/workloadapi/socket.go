package workloadapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/rotor-dev/rotor/agent"
)

// DefaultMode is the socket's mode unless told otherwise: the owner only,
// as key.pem, since whoever connects gets the private key.
const DefaultMode fs.FileMode = 0o600

// Socket is where and how the Workload API is served.
type Socket struct {
	Path string
	// Mode is the socket file's permission bits; zero means DefaultMode.
	Mode fs.FileMode
	// Group, a name or a numeric ID, owns the socket if set; the agent
	// must be a member (or root).
	Group string
}

// Listen binds the socket with its mode and group set before anyone can
// connect: it is bound under a temporary name in the same directory,
// chmod-ed and chown-ed there, then renamed to Path, replacing a socket
// left by an agent that died. A Path that is anything but a socket is
// refused, so a wrong flag cannot replace a file. Its directory is made if
// missing. Close removes the socket
// unless another has replaced it since.
func (s Socket) Listen() (net.Listener, error) {
	mode := s.Mode
	if mode == 0 {
		mode = DefaultMode
	}
	gid := -1
	if s.Group != "" {
		var err error
		if gid, err = lookupGroup(s.Group); err != nil {
			return nil, err
		}
	}
	if fi, err := os.Lstat(s.Path); err == nil && fi.Mode().Type() != fs.ModeSocket {
		return nil, fmt.Errorf("workload API socket %s: exists and is not a socket", s.Path)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("workload API socket: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(s.Path), 0o755); err != nil {
		return nil, fmt.Errorf("workload API socket: %w", err)
	}
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	tmp := filepath.Join(filepath.Dir(s.Path), ".wl-"+hex.EncodeToString(suffix[:]))
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("workload API socket %s: %w", s.Path, err)
	}
	l.SetUnlinkOnClose(false) // it is renamed; Close removes the final name
	fail := func(err error) (net.Listener, error) {
		l.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("workload API socket %s: %w", s.Path, err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fail(err)
	}
	if gid >= 0 {
		if err := os.Lchown(tmp, -1, gid); err != nil {
			return fail(err)
		}
	}
	fi, err := os.Lstat(tmp)
	if err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, s.Path); err != nil {
		return fail(err)
	}
	return &listener{UnixListener: l, path: s.Path, fi: fi}, nil
}

// lookupGroup reads a group name or numeric ID.
func lookupGroup(g string) (int, error) {
	gid, err := agent.LookupGroup(g)
	if err != nil {
		return 0, fmt.Errorf("workload API socket group: %w", err)
	}
	return gid, nil
}

// listener removes its socket file on Close if it is still its own.
type listener struct {
	*net.UnixListener
	path string
	fi   os.FileInfo
}

func (l *listener) Close() error {
	err := l.UnixListener.Close()
	if fi, serr := os.Lstat(l.path); serr == nil && os.SameFile(fi, l.fi) {
		_ = os.Remove(l.path)
	}
	return err
}

// Serve serves the Workload API on l until ctx ends, then ends every
// stream (Workload API streams never end by themselves, so a graceful
// stop would wait forever) and returns nil.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true) // gRPC's HTTP/2 with prior knowledge; nothing else
	hs := &http.Server{Handler: s, Protocols: &protocols, ReadHeaderTimeout: 5 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx },
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	stopped, closed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(closed)
		select {
		case <-ctx.Done():
			_ = hs.Close()
		case <-stopped:
		}
	}()
	err := hs.Serve(l) // closes l, and so removes the socket, before it returns
	close(stopped)
	<-closed
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("workload API: %w", err)
}
