//go:build cgo

package signer

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
	"github.com/rotor-dev/rotor"
)

// Reopen pacing after a token or session loss: the first attempt waits
// until pkcs11MinReopenGap has passed since the last reopen (so a token
// that fails again right after each reopen is not hammered), then attempts
// back off exponentially up to pkcs11MaxReopenBackoff.
const (
	pkcs11MinReopenGap     = time.Second
	pkcs11FirstBackoff     = 100 * time.Millisecond
	pkcs11MaxReopenBackoff = 10 * time.Second
)

// pkcs11Signer signs with a key pair on a token through a crypto11 session
// pool. When the token or its sessions go away it drops the whole crypto11
// context and reopens it in the background; meanwhile Sign answers
// ESignerUnavailable at once, so the process never needs a restart.
type pkcs11Signer struct {
	cfg PKCS11Config
	pub crypto.PublicKey
	log *slog.Logger

	cur atomic.Pointer[pkcs11Conn] // nil while reopening or after Close

	stopper    // its mu guards the fields below
	reopening  bool
	lastReopen time.Time
}

// pkcs11Conn is one crypto11 context and the key found through it.
type pkcs11Conn struct {
	ctx *crypto11.Context
	key crypto11.Signer
}

func openPKCS11(ctx context.Context, cfg Config) (Key, error) {
	conn, err := withContext(ctx, func() (*pkcs11Conn, error) { return connectPKCS11(cfg.PKCS11) })
	if err != nil {
		return nil, err
	}
	s := &pkcs11Signer{cfg: cfg.PKCS11, pub: conn.key.Public(), log: cfg.logger(),
		stopper: newStopper(), lastReopen: time.Now()}
	s.cur.Store(conn)
	return s, nil
}

// connectPKCS11 opens a crypto11 context (module, token, login, pool) and
// finds the key pair labelled cfg.KeyLabel.
func connectPKCS11(cfg PKCS11Config) (*pkcs11Conn, error) {
	c, err := configurePKCS11(cfg)
	if err != nil {
		return nil, err
	}
	keys, err := c.FindKeyPairs(nil, []byte(cfg.KeyLabel))
	if err == nil && len(keys) == 0 {
		err = fmt.Errorf("no key pair labelled %q on token %q (create one with `rotor-ca init --signer pkcs11`)", cfg.KeyLabel, cfg.TokenLabel)
	}
	if err == nil && len(keys) > 1 {
		err = fmt.Errorf("%d key pairs labelled %q on token %q; labels must be unique", len(keys), cfg.KeyLabel, cfg.TokenLabel)
	}
	if err == nil {
		err = checkKey(keys[0].Public())
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("signer pkcs11: %w", err)
	}
	return &pkcs11Conn{ctx: c, key: keys[0]}, nil
}

func configurePKCS11(cfg PKCS11Config) (*crypto11.Context, error) {
	n := cfg.MaxSessions
	if n == 0 {
		n = DefaultPKCS11Sessions
	}
	c, err := crypto11.Configure(&crypto11.Config{Path: cfg.Module, TokenLabel: cfg.TokenLabel, Pin: cfg.PIN, MaxSessions: n})
	if err != nil {
		return nil, fmt.Errorf("signer pkcs11: open token %q with %s: %w", cfg.TokenLabel, cfg.Module, err)
	}
	return c, nil
}

// Public implements rotor.Signer. The key is fixed at Open; a reopen that
// finds a different key under the label is refused.
func (s *pkcs11Signer) Public() crypto.PublicKey { return s.pub }

// Sign implements rotor.Signer. crypto11 takes no context, so the call runs
// in its own goroutine and the caller gets ctx's error at the deadline even
// if the token is slow; the late result is discarded.
func (s *pkcs11Signer) Sign(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	c := s.cur.Load()
	if c == nil {
		s.reopen(nil)
		return nil, rotor.Errorf(rotor.ESignerUnavailable, "PKCS#11 token is being reopened")
	}
	sig, err := withContext(ctx, func() ([]byte, error) { return c.key.Sign(nil, digest, opts) })
	if err == nil {
		return sig, nil
	}
	if ctx.Err() != nil {
		return nil, rotor.WrapError(rotor.ESignerUnavailable, err, "PKCS#11 signature did not finish in time")
	}
	if pkcs11Lost(err) {
		s.log.Warn("PKCS#11 session or token lost; reopening", "token", s.cfg.TokenLabel, "error", err)
		s.reopen(c)
	}
	return nil, rotor.WrapError(rotor.ESignerUnavailable, err, "PKCS#11 signature failed")
}

// pkcs11Lost reports errors after which the context's sessions, login or
// handles are no longer usable, so only a fresh context can sign again.
func pkcs11Lost(err error) bool {
	var e pkcs11.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e {
	case pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED, pkcs11.CKR_SESSION_COUNT,
		pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_TOKEN_NOT_RECOGNIZED, pkcs11.CKR_DEVICE_REMOVED,
		pkcs11.CKR_DEVICE_ERROR, pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED, pkcs11.CKR_USER_NOT_LOGGED_IN,
		pkcs11.CKR_KEY_HANDLE_INVALID, pkcs11.CKR_OBJECT_HANDLE_INVALID, pkcs11.CKR_SLOT_ID_INVALID,
		pkcs11.CKR_GENERAL_ERROR:
		return true
	}
	return false
}

// reopen starts the background reopen unless one runs already. broken is
// the connection that failed (nil if none is current); if another caller
// already replaced it, there is nothing to do.
func (s *pkcs11Signer) reopen(broken *pkcs11Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || s.reopening {
		return
	}
	if broken != nil && !s.cur.CompareAndSwap(broken, nil) {
		return
	}
	s.reopening = true
	wait := time.Until(s.lastReopen.Add(pkcs11MinReopenGap))
	s.goLocked(func() { s.reopenLoop(broken, wait) })
}

func (s *pkcs11Signer) reopenLoop(broken *pkcs11Conn, wait time.Duration) {
	if broken != nil {
		// Close waits for in-flight operations, which fail fast on a lost
		// token, and finalizes the module once no context uses it, so the
		// next Configure initializes it afresh.
		broken.ctx.Close()
	}
	backoff := pkcs11FirstBackoff
	for attempt := 1; ; attempt++ {
		if !s.sleep(wait) {
			s.finishReopen(nil)
			return
		}
		conn, err := connectPKCS11(s.cfg)
		if err == nil && !rotor.SamePublicKey(s.pub, conn.key.Public()) {
			conn.ctx.Close()
			conn, err = nil, fmt.Errorf("signer pkcs11: key %q on token %q is not the key opened at start: %w", s.cfg.KeyLabel, s.cfg.TokenLabel, ErrKeyMismatch)
		}
		if err == nil {
			s.log.Info("PKCS#11 token reopened", "token", s.cfg.TokenLabel, "attempt", attempt)
			s.finishReopen(conn)
			return
		}
		s.log.Warn("PKCS#11 reopen failed; will retry", "token", s.cfg.TokenLabel, "attempt", attempt, "retry_in", backoff, "error", err)
		wait, backoff = backoff, min(2*backoff, pkcs11MaxReopenBackoff)
	}
}

// finishReopen installs conn (nil when giving up at Close) unless the
// signer was closed meanwhile.
func (s *pkcs11Signer) finishReopen(conn *pkcs11Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reopening = false
	s.lastReopen = time.Now()
	if conn == nil {
		return
	}
	if s.stopped {
		conn.ctx.Close()
		return
	}
	s.cur.Store(conn)
}

// Close stops any reopen and releases the sessions and the module. Signs
// running concurrently fail with ESignerUnavailable.
func (s *pkcs11Signer) Close() error {
	if !s.stop() {
		return nil
	}
	if c := s.cur.Swap(nil); c != nil {
		return c.ctx.Close()
	}
	return nil
}

// generatePKCS11 creates a sensitive, non-extractable key pair labelled
// cfg.PKCS11.KeyLabel with a random CKA_ID, refusing if the label is taken.
func generatePKCS11(ctx context.Context, cfg Config, kt rotor.KeyType) (Key, error) {
	p := cfg.PKCS11
	_, err := withContext(ctx, func() (struct{}, error) {
		c, err := configurePKCS11(p)
		if err != nil {
			return struct{}{}, err
		}
		defer c.Close()
		existing, err := c.FindKeyPairs(nil, []byte(p.KeyLabel))
		if err != nil {
			return struct{}{}, fmt.Errorf("signer pkcs11: look for key %q: %w", p.KeyLabel, err)
		}
		if len(existing) > 0 {
			return struct{}{}, fmt.Errorf("signer pkcs11: a key labelled %q is already on token %q; refusing to add another", p.KeyLabel, p.TokenLabel)
		}
		id := make([]byte, 16)
		if _, err := rand.Read(id); err != nil {
			return struct{}{}, err
		}
		// crypto11 marks private keys CKA_SENSITIVE and not CKA_EXTRACTABLE.
		switch kt {
		case rotor.ECDSAP384:
			_, err = c.GenerateECDSAKeyPairWithLabel(id, []byte(p.KeyLabel), elliptic.P384())
		case rotor.RSA2048:
			_, err = c.GenerateRSAKeyPairWithLabel(id, []byte(p.KeyLabel), 2048)
		case rotor.RSA3072:
			_, err = c.GenerateRSAKeyPairWithLabel(id, []byte(p.KeyLabel), 3072)
		default:
			_, err = c.GenerateECDSAKeyPairWithLabel(id, []byte(p.KeyLabel), elliptic.P256())
		}
		if err != nil {
			return struct{}{}, fmt.Errorf("signer pkcs11: generate %s key %q: %w", kt, p.KeyLabel, err)
		}
		return struct{}{}, nil
	})
	if err != nil {
		return nil, err
	}
	return openPKCS11(ctx, cfg)
}

// withContext runs f, which cannot be interrupted, and returns early with
// ctx's error if ctx ends first; f then finishes on its own and its result
// is dropped.
func withContext[T any](ctx context.Context, f func() (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	if ctx.Done() == nil { // never cancelled: save the goroutine
		return f()
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}
