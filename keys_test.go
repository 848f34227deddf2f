package rotor_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/rotor-dev/rotor"
)

// TestKeyTypes: every key type is made, named back by KeyTypeOf, survives
// PEM, and has a signature hash, so a key of any type can sign certificates.
func TestKeyTypes(t *testing.T) {
	t.Parallel()
	for _, kt := range rotor.KeyTypes {
		t.Run("ok/"+string(kt), func(t *testing.T) {
			key, err := rotor.GenerateKey(kt, nil)
			if err != nil {
				t.Fatal(err)
			}
			pemKey, err := rotor.EncodePrivateKeyPEM(key)
			if err != nil {
				t.Fatal(err)
			}
			back, err := rotor.ParsePrivateKeyPEM(pemKey)
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := rotor.KeyTypeOf(back.Public()); !ok || got != kt {
				t.Errorf("parsed key is %q, want %q", got, kt)
			}
			if _, err := rotor.SignatureHash(key.Public()); err != nil {
				t.Errorf("SignatureHash: %v", err)
			}
			if err := rotor.CheckSigner(context.Background(), rotor.LocalSigner{Key: back}); err != nil {
				t.Errorf("CheckSigner: %v", err)
			}
		})
	}
	t.Run("ok/empty-is-default", func(t *testing.T) {
		if kt, err := rotor.ParseKeyType(""); err != nil || kt != rotor.ECDSAP256 {
			t.Errorf(`ParseKeyType("") = %q, %v`, kt, err)
		}
	})
	t.Run("fail/unknown-type", func(t *testing.T) {
		if _, err := rotor.ParseKeyType("dsa-1024"); rotor.ErrorCodeOf(err) != rotor.EInvalid {
			t.Errorf("dsa-1024: %v", err)
		}
		if _, err := rotor.GenerateKey("dsa-1024", nil); err == nil {
			t.Error("dsa-1024 generated")
		}
	})
	t.Run("fail/p224-has-no-hash", func(t *testing.T) {
		k, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
		if _, err := rotor.SignatureHash(k.Public()); err == nil {
			t.Error("P-224 has a signature hash")
		}
	})
}

func TestParsePrivateKeyPEMRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, pem, want string }{
		{"fail/certificate", "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n", "not a private key"},
		{"fail/encrypted", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n", "encrypted"},
		{"fail/not-pem", "hello", "no PEM private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := rotor.ParsePrivateKeyPEM([]byte(tt.pem)); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to say %q", err, tt.want)
			}
		})
	}
}

// wrongKey claims one key's public half and signs with another: a backend
// that signs "successfully" with the wrong key.
type wrongKey struct {
	rotor.LocalSigner
	claimed crypto.PublicKey
}

func (w wrongKey) Public() crypto.PublicKey { return w.claimed }

func TestCheckSigner(t *testing.T) {
	t.Parallel()
	k1, _ := rotor.GenerateKey(rotor.ECDSAP256, nil)
	k2, _ := rotor.GenerateKey(rotor.ECDSAP256, nil)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		s    rotor.Signer
		want rotor.ErrorCode
	}{
		{"ok/ecdsa-p256", context.Background(), rotor.LocalSigner{Key: k1}, ""},
		{"fail/signs-with-another-key", context.Background(), wrongKey{rotor.LocalSigner{Key: k2}, k1.Public()}, rotor.ESignerUnavailable},
		{"fail/cancelled", cancelled, rotor.LocalSigner{Key: k1}, rotor.ESignerUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rotor.ErrorCodeOf(rotor.CheckSigner(tt.ctx, tt.s)); got != tt.want {
				t.Errorf("code %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	const fp = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" // sha256("test")
	if got := rotor.Fingerprint([]byte("test")); got != fp {
		t.Fatalf("Fingerprint = %s", got)
	}
	upper := strings.ToUpper(fp)
	colons := ""
	for i := 0; i < len(upper); i += 2 {
		colons += upper[i:i+2] + ":"
	}
	for _, in := range []string{fp, upper, "sha256:" + fp, "SHA256 Fingerprint=" + colons[:len(colons)-1], " " + fp + "\n"} {
		if got, err := rotor.ParseFingerprint(in); err != nil || got != fp {
			t.Errorf("ParseFingerprint(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", fp[:62], fp + "00", "zz" + fp[2:]} {
		if _, err := rotor.ParseFingerprint(in); rotor.ErrorCodeOf(err) != rotor.EInvalid {
			t.Errorf("ParseFingerprint(%q) = %v, want invalid", in, err)
		}
	}
}

// TestCodeTable: every code has a row; the codes the CA sends have a 4xx or
// 5xx status, and an answer without a Rotor type maps back to a code of its
// status.
func TestCodeTable(t *testing.T) {
	t.Parallel()
	client := map[rotor.ErrorCode]bool{rotor.ECAUnreachable: true, rotor.ECAUntrusted: true}
	for _, c := range rotor.ErrorCodes {
		if !c.Known() || c.Title() == "" {
			t.Errorf("%s has no row", c)
		}
		if s := c.HTTPStatus(); client[c] != (s == 0) || (s != 0 && (s < 400 || s > 599)) {
			t.Errorf("%s: status %d", c, s)
		}
		if got := rotor.CodeFromProblemType(c.ProblemType()); got != c {
			t.Errorf("%s round-trips to %s", c, got)
		}
		if c.RetryAfter() > 0 && !c.Retryable() {
			t.Errorf("%s sends Retry-After but is not retryable", c)
		}
	}
	for status, want := range map[int]rotor.ErrorCode{401: rotor.EUnauthenticated, 404: rotor.ENotFound,
		418: rotor.EInvalid, 429: rotor.ERateLimited, 500: rotor.EInternal, 502: rotor.ECAUnreachable,
		503: rotor.ECAUnreachable} {
		if got := rotor.CodeForStatus(status); got != want {
			t.Errorf("CodeForStatus(%d) = %s, want %s", status, got, want)
		}
	}
	if got := rotor.CodeFromProblemType("about:blank"); got != rotor.EInternal {
		t.Errorf("foreign type gave %s", got)
	}
	faults := map[rotor.ErrorCode]bool{rotor.EStoreUnavailable: true, rotor.ESignerUnavailable: true,
		rotor.EAuthUnavailable: true, rotor.EInternal: true}
	for _, c := range rotor.ErrorCodes {
		if c.ServerFault() != faults[c] {
			t.Errorf("%s: ServerFault %v, want %v", c, c.ServerFault(), faults[c])
		}
	}
}

// TestHungUp: a cancelled request context is the caller hanging up; the
// server's own deadline passing is not.
func TestHungUp(t *testing.T) {
	t.Parallel()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithTimeout(context.Background(), 0)
	defer cancel2()
	tests := []struct {
		name string
		ctx  context.Context
		want bool
	}{
		{"live", context.Background(), false},
		{"cancelled", cancelled, true},
		{"deadline", expired, false},
	}
	for _, tt := range tests {
		if got := rotor.HungUp(tt.ctx); got != tt.want {
			t.Errorf("%s: HungUp = %v, want %v", tt.name, got, tt.want)
		}
	}
}
