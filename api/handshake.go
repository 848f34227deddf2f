package api

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"runtime"
	"sync/atomic"
	"time"
)

// handshakeListener completes each connection's TLS handshake before
// net/http sees it, for two reasons.
//
// Its own bound: net/http bounds a handshake by the smallest of its read
// header, read and write timeouts, so the 5 s slow-header defence also
// cut off honest handshakes that a burst of thousands of new connections
// had slowed past 5 s.
//
// Its own order: a handshake's server side is CPU (a key exchange and a
// signature), and thousands computed at once share the cores until all of
// them are late. The server's part runs a few at a time, first come first
// served, so under a burst each handshake finishes in about its own cost
// plus its wait, and the rest wait without spending CPU. The gate is taken
// only once the ClientHello has arrived and is given back when the server
// first waits for the client again, so a client that stalls, before its
// hello or after it, never holds a place.
//
// Accept returns *tls.Conn, so net/http still sees the TLS state (mTLS
// authentication reads it); its own handshake call then returns at once.
type handshakeListener struct {
	inner  net.Listener
	config *tls.Config
	bound  time.Duration
	gate   chan struct{}
	log    *slog.Logger

	ready  chan *tls.Conn
	stop   context.Context
	cancel context.CancelFunc
	failed chan struct{} // closed when inner's Accept failed for good
	err    error         // why; read only after failed is closed
}

// newHandshakeListener serves config over inner, each handshake within
// bound. Twice the CPUs compute their server side at once: enough to keep
// the cores busy while one handshake writes its flight.
func newHandshakeListener(inner net.Listener, config *tls.Config, bound time.Duration, log *slog.Logger) *handshakeListener {
	config = config.Clone()
	getConfig := config.GetConfigForClient
	config.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if c, ok := hello.Conn.(*gatedConn); ok {
			if err := c.acquire(hello.Context()); err != nil {
				return nil, err
			}
		}
		if getConfig != nil {
			return getConfig(hello)
		}
		return nil, nil
	}
	stop, cancel := context.WithCancel(context.Background())
	l := &handshakeListener{inner: inner, config: config, bound: bound,
		gate: make(chan struct{}, 2*runtime.GOMAXPROCS(0)), log: log,
		ready: make(chan *tls.Conn), stop: stop, cancel: cancel, failed: make(chan struct{})}
	go l.acceptLoop()
	return l
}

func (l *handshakeListener) acceptLoop() {
	for {
		c, err := l.inner.Accept()
		if err != nil {
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() && l.stop.Err() == nil {
				// Out of descriptors and the like: back off and retry, as
				// net/http's own accept loop does.
				l.log.Warn("accept failed; retrying", "error", err)
				select {
				case <-time.After(50 * time.Millisecond):
					continue
				case <-l.stop.Done():
				}
			}
			l.err = err
			close(l.failed)
			return
		}
		go l.handshake(c)
	}
}

func (l *handshakeListener) handshake(raw net.Conn) {
	gc := &gatedConn{Conn: raw, gate: l.gate}
	tc := tls.Server(gc, l.config)
	// The context's end closes the conn, so it also ends a read or write
	// that is blocked: no deadline on the conn is needed.
	ctx, cancel := context.WithTimeout(l.stop, l.bound)
	err := tc.HandshakeContext(ctx)
	cancel()
	gc.release()
	if err != nil {
		// net/http logs these at its ErrorLog; a scan or a client that gave
		// up is not news above debug.
		l.log.Debug("TLS handshake failed", "remote", raw.RemoteAddr().String(), "error", err)
		_ = tc.Close()
		return
	}
	select {
	case l.ready <- tc:
	case <-l.stop.Done():
		_ = tc.Close()
	}
}

func (l *handshakeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.failed:
		return nil, l.err
	case <-l.stop.Done():
		return nil, net.ErrClosed
	}
}

// Close stops accepting and ends the handshakes in progress; connections
// already handed to net/http are its to close. net/http calls it once.
func (l *handshakeListener) Close() error {
	l.cancel()
	return l.inner.Close()
}

func (l *handshakeListener) Addr() net.Addr { return l.inner.Addr() }

// gatedConn holds a place in the handshake gate from the ClientHello until
// the server first reads again, which is when its own flight is written
// and it waits for the client's.
type gatedConn struct {
	net.Conn
	gate chan struct{}
	held atomic.Bool
}

func (c *gatedConn) acquire(ctx context.Context) error {
	select {
	case c.gate <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	c.held.Store(true)
	return nil
}

func (c *gatedConn) release() {
	if c.held.CompareAndSwap(true, false) {
		<-c.gate
	}
}

func (c *gatedConn) Read(p []byte) (int, error) {
	c.release()
	return c.Conn.Read(p)
}
