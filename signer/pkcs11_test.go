//go:build cgo

package signer

import (
	"context"
	"crypto/rsa"
	"errors"
	"sync"
	"testing"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
	"github.com/rotor-dev/rotor"
	"github.com/rotor-dev/rotor/internal/testenv"
)

// softHSMConfig makes a fresh SoftHSM2 token and a config for key label.
func softHSMConfig(t *testing.T, label string) Config {
	h := testenv.NewSoftHSM(t)
	return Config{Backend: BackendPKCS11, PKCS11: PKCS11Config{Module: h.Module, TokenLabel: h.Label, PIN: h.PIN, KeyLabel: label}}
}

func closeOnCleanup(t *testing.T, s rotor.Signer) *pkcs11Signer {
	t.Helper()
	p, ok := s.(*pkcs11Signer)
	if !ok {
		t.Fatalf("signer is %T, want *pkcs11Signer", s)
	}
	// Close releases the module, so the next test's token (another
	// SOFTHSM2_CONF) is read by a fresh C_Initialize.
	t.Cleanup(func() { p.Close() })
	return p
}

func TestPKCS11Generate(t *testing.T) {
	tests := []struct {
		name string
		alg  rotor.KeyType
		want string
	}{
		{"ok/ecdsa-p256", rotor.ECDSAP256, "P-256"},
		{"ok/ecdsa-p384", rotor.ECDSAP384, "P-384"},
		{"ok/rsa-2048", rotor.RSA2048, "RSA-2048"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := softHSMConfig(t, "issuer")
			s, err := Generate(context.Background(), cfg, tt.alg)
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			p := closeOnCleanup(t, s)
			if got := keyName(s.Public()); got != tt.want {
				t.Fatalf("generated %s, want %s", got, tt.want)
			}
			c := p.cur.Load()
			attrs, err := c.ctx.GetAttributes(c.key, []crypto11.AttributeType{
				crypto11.CkaSensitive, crypto11.CkaExtractable, crypto11.CkaNeverExtractable})
			if err != nil {
				t.Fatalf("read key attributes: %v", err)
			}
			for typ, want := range map[crypto11.AttributeType]byte{crypto11.CkaSensitive: 1, crypto11.CkaExtractable: 0, crypto11.CkaNeverExtractable: 1} {
				if v := attrs[typ].Value; len(v) != 1 || v[0] != want {
					t.Errorf("attribute %#x = %v, want %d", typ, v, want)
				}
			}
			secret := crypto11.CkaValue
			if _, ok := s.Public().(*rsa.PublicKey); ok {
				secret = crypto11.CkaPrivateExponent
			}
			_, err = c.ctx.GetAttribute(c.key, secret)
			if !errors.Is(err, pkcs11.Error(pkcs11.CKR_ATTRIBUTE_SENSITIVE)) {
				t.Fatalf("reading the private value = %v, want CKR_ATTRIBUTE_SENSITIVE", err)
			}
			selfSigned(t, s)

			if _, err := Generate(context.Background(), cfg, tt.alg); err == nil {
				t.Fatal("Generate added a second key under the same label")
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			reopened := closeOnCleanup(t, must(Open(context.Background(), cfg)))
			if !rotor.SamePublicKey(reopened.Public(), s.Public()) {
				t.Fatal("Open found another key than Generate made")
			}
			selfSigned(t, reopened)
		})
	}
}

func TestPKCS11OpenRefuses(t *testing.T) {
	cfg := softHSMConfig(t, "issuer")
	tests := []struct {
		name string
		edit func(*PKCS11Config)
	}{
		{"fail/no-such-key", func(c *PKCS11Config) { c.KeyLabel = "absent" }},
		{"fail/wrong-pin", func(c *PKCS11Config) { c.PIN = "9999" }},
		{"fail/no-such-token", func(c *PKCS11Config) { c.TokenLabel = "absent" }},
		{"fail/no-such-module", func(c *PKCS11Config) { c.Module = "/nonexistent/libpkcs11.so" }},
	}
	// Closed before the cases run: while one context is logged in, PKCS#11
	// lets another in the same process use the token whatever its PIN.
	closeOnCleanup(t, must(Generate(context.Background(), cfg, rotor.ECDSAP256))).Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			tt.edit(&c.PKCS11)
			if s, err := Open(context.Background(), c); err == nil {
				closeOnCleanup(t, s)
				t.Fatal("Open succeeded")
			}
		})
	}
}

func TestPKCS11ConcurrentSign(t *testing.T) {
	s := closeOnCleanup(t, must(Generate(context.Background(), softHSMConfig(t, "issuer"), rotor.ECDSAP256)))
	const goroutines, each = 32, 20
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for range goroutines {
		wg.Go(func() {
			for range each {
				if err := rotor.CheckSigner(context.Background(), s); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent signature: %v", err)
	}
}

func TestPKCS11CheckCertificateMismatch(t *testing.T) {
	cfg := softHSMConfig(t, "issuer-a")
	a := closeOnCleanup(t, must(Generate(context.Background(), cfg, rotor.ECDSAP256)))
	cfg.PKCS11.KeyLabel = "issuer-b"
	b := closeOnCleanup(t, must(Generate(context.Background(), cfg, rotor.ECDSAP256)))
	cert := selfSigned(t, a)
	if err := CheckCertificate(b, cert); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("CheckCertificate(b, cert of a) = %v, want ErrKeyMismatch", err)
	}
}
