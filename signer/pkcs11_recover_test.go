//go:build cgo

package signer

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
	"github.com/rotor-dev/rotor"
)

// rawModule loads the PKCS#11 module a second time, as another part of the
// process would. The library's state (sessions, initialisation) is shared
// with crypto11's handle, so what this handle does happens to the signer.
func rawModule(t *testing.T, cfg PKCS11Config) (*pkcs11.Ctx, uint) {
	t.Helper()
	p := pkcs11.New(cfg.Module)
	if p == nil {
		t.Fatalf("load %s", cfg.Module)
	}
	t.Cleanup(p.Destroy) // dlclose only; C_Finalize is up to the test
	slots, err := p.GetSlotList(true)
	if err != nil {
		t.Fatalf("list slots: %v", err)
	}
	for _, slot := range slots {
		if info, err := p.GetTokenInfo(slot); err == nil && info.Label == cfg.TokenLabel {
			return p, slot
		}
	}
	t.Fatalf("token %q not found", cfg.TokenLabel)
	return nil, 0
}

// TestPKCS11Recovers takes the token's sessions or the whole module away
// underneath a working signer: the next signatures must fail with
// ESignerUnavailable, and later ones succeed again through the same signer,
// with no new Open.
func TestPKCS11Recovers(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(p *pkcs11.Ctx, slot uint) error
	}{
		{"recover/sessions-closed", func(p *pkcs11.Ctx, slot uint) error { return p.CloseAllSessions(slot) }},
		{"recover/module-finalized", func(p *pkcs11.Ctx, _ uint) error { return p.Finalize() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := softHSMConfig(t, "issuer")
			s := closeOnCleanup(t, must(Generate(context.Background(), cfg, rotor.ECDSAP256)))
			ctx := context.Background()
			if err := rotor.CheckSigner(ctx, s); err != nil { // puts a session in the pool
				t.Fatalf("sign before: %v", err)
			}
			before := s.cur.Load()
			p, slot := rawModule(t, cfg.PKCS11)
			if err := tt.breakIt(p, slot); err != nil {
				t.Fatalf("break the token: %v", err)
			}
			wantCode(t, rotor.CheckSigner(ctx, s), rotor.ESignerUnavailable)

			var err error
			for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if err = rotor.CheckSigner(ctx, s); err == nil {
					break
				}
				wantCode(t, err, rotor.ESignerUnavailable)
			}
			if err != nil {
				t.Fatalf("signer did not recover: %v", err)
			}
			if s.cur.Load() == before {
				t.Fatal("signer recovered without reopening its context")
			}
			selfSigned(t, s)
		})
	}
}

// TestPKCS11SignHonoursDeadline keeps the signer's only pooled session busy
// with RSA-4096 key generations, so a signature has to wait for it: the
// caller must get its deadline error without waiting for the token.
func TestPKCS11SignHonoursDeadline(t *testing.T) {
	cfg := softHSMConfig(t, "issuer")
	cfg.PKCS11.MaxSessions = 2 // one for the login, one pooled
	s := closeOnCleanup(t, must(Generate(context.Background(), cfg, rotor.ECDSAP256)))
	c := s.cur.Load()

	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := byte(0); !stop.Load(); i++ {
			if _, err := c.ctx.GenerateRSAKeyPairWithLabel([]byte{i}, []byte("busy"), 4096); err != nil {
				t.Errorf("busy-work key generation: %v", err)
				return
			}
		}
	})
	var err error
	for range 200 { // a signature may slip in between two generations
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		err = rotor.CheckSigner(ctx, s)
		cancel()
		if err != nil {
			break
		}
	}
	stop.Store(true)
	wg.Wait()
	wantCode(t, err, rotor.ESignerUnavailable)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want one wrapping context.DeadlineExceeded", err)
	}
	if err := rotor.CheckSigner(context.Background(), s); err != nil {
		t.Fatalf("signer broken after a timed-out signature: %v", err)
	}
}
